"""Quick MNIST deblurring: 20 levels of an 11 x 11 Gaussian kernel of std 1.5 (reflecting boundaries), so the digit
at level K is blurred by about 1.5 sqrt(20) = 6.7 pixels and keeps its rough layout for the kernel-density prior.
The paper's MNIST blur (configs/cold/mnist_blur.py) uses std 7, which leaves a constant image."""

from configs.cold import quick_config


def get_config():
    config = quick_config()
    config.model.forward = "cold_blur"
    config.model.K = 20
    config.model.kernel_size = 11
    config.model.kernel_std = 1.5
    config.model.blur_routine = "constant"
    config.model.blur_padding = "reflect"
    return config
