"""Cold Diffusion's CIFAR-10 decolorisation: 20 levels blending towards the channel mean, linearly, grey at K (their
'Linear' routine with decolor_total_remove); their README's `train.py --dataset cifar10 --time_steps 20
--forward_process_type Decolorization --decolor_total_remove --decolor_routine Linear`."""

from configs.cold import paper_config


def get_config():
    config = paper_config("cifar10", 3)
    config.data.random_flip = True
    config.model.forward = "desaturate"
    config.model.K = 20
    config.model.desaturate_routine = "linear"
    return config
