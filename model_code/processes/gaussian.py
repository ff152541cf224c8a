"""The gaussian process: DDPM and blurring diffusion, with the exact Gaussian posterior per basis coefficient."""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from model_code.itd import gaussian_channel, sample_truncated_logistic, truncation_interval
from model_code.operators import OPERATORS, DiagonalOperator, Operator
from model_code.processes.base import PROCESSES, AncestralDenoiser, Net, Process, per_example_sum, randn_like
from model_code.randomness import RandomSource, as_randomness


def cosine_logsnr(t: torch.Tensor, logsnr_min: float, logsnr_max: float) -> torch.Tensor:
    """logsnr(t) = -2 log tan(a t + b), b = arctan(e^{-max/2}), a = arctan(e^{-min/2}) - b.

    Decreases from logsnr_max at t = 0 to logsnr_min at t = 1 (the cosine schedule, clipped).
    """
    b = math.atan(math.exp(-logsnr_max / 2))
    a = math.atan(math.exp(-logsnr_min / 2)) - b
    return -2 * torch.log(torch.tan(a * t + b))


def cosine_time(logsnr: torch.Tensor, logsnr_min: float, logsnr_max: float) -> torch.Tensor:
    """The inverse of ``cosine_logsnr``: t(a) = (arctan(e^{-a/2}) - b) / a (any real log SNR)."""
    b = math.atan(math.exp(-logsnr_max / 2))
    a = math.atan(math.exp(-logsnr_min / 2)) - b
    return (torch.atan(torch.exp(-logsnr / 2)) - b) / a


def _expand(values: torch.Tensor) -> torch.Tensor:
    return values[:, None, None, None]


PREDICTIONS = ("eps", "v")  # what the gaussian process's network predicts


def diagonal_operators() -> List[str]:
    """The registered operators that are diagonal in an orthonormal basis (``DiagonalOperator``)."""
    return [name for name in OPERATORS.names() if issubclass(OPERATORS.get(name), DiagonalOperator)]


@PROCESSES.register("gaussian")
class GaussianProcess(Process):
    """A denoiser with the exact Gaussian posterior, per coefficient of the operator's basis.

    Forward (in the basis, per frequency): u_t = alpha_t x + sigma_t eps with alpha_t = a_t d_t,
    a_t^2 = sigmoid(logsnr(t)), sigma_t^2 = sigmoid(-logsnr(t)), d_t the operator's spectrum at t.
    With the DCT ``blur`` operator this is blurring diffusion (Hoogeboom & Salimans 2023); with
    ``identity`` (or ``blur`` with blurring_sigma_max = 0) it is DDPM with the cosine schedule. Data in [-1, 1].

    What the network predicts (``prediction``), per coefficient, with r^2 = alpha_t^2 + sigma_t^2:
        eps: eps_hat, and x_hat = (u_t - sigma_t eps_hat) / alpha_t; trained on |eps - eps_hat|^2,
            which is (alpha_t / sigma_t)^2 |x - x_hat|^2.
        v: v = (alpha_t eps - sigma_t x) / r (Salimans & Ho 2022; r = 1 without an operator), and
            x_hat = (alpha_t u_t - sigma_t r v_hat) / r^2; trained on |v - v_hat|^2 = (r / sigma_t)^2 |x - x_hat|^2.
    With eps the network's error reaches x_hat multiplied by sigma_t / alpha_t, which is large where the
    signal is weak: at high noise, and in the frequencies a blur has damped towards d_min. With v it is
    multiplied by sigma_t / r < 1, and the loss weights the high-noise levels more.

    Reverse step t -> s (Eq. of the Gaussian posterior q(u_s | u_t, x)):
        alpha_{t|s} = alpha_t / alpha_s,  sigma_{t|s}^2 = sigma_t^2 - alpha_{t|s}^2 sigma_s^2,
        sigma_{t->s}^2 = sigma_{t|s}^2 sigma_s^2 / sigma_t^2,
        mu = sigma_{t->s}^2 (alpha_{t|s} / sigma_{t|s}^2 u_t + alpha_s / sigma_s^2 x_hat),
        x_hat = (u_t - sigma_t eps_hat) / alpha_t.
    The samplers take this step in its DDIM form (``ddim_step``), which with eta = 1 is the same Gaussian and
    also steps between levels further apart (s < t - 1: few-step sampling) and, with eta = 0, deterministically
    in both directions. eps is white in both bases, so the noise is drawn directly in the basis. The network's
    output becomes x_hat in ``GaussianDenoiser``, the one place where eps or v is converted.
    """

    data_range = (-1.0, 1.0)

    def __init__(
        self,
        *,
        operator: Operator,
        continuous_time: bool = True,
        logsnr_min: float = -10.0,
        logsnr_max: float = 10.0,
        clip_denoised: bool = True,
        logsnr_sampling: str = "schedule",
        logistic_loc: float = 0.0,
        logistic_scale: float = 2.0,
        prediction: str = "eps",
    ):
        super().__init__(operator=operator)
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction={prediction!r}; allowed: {', '.join(PREDICTIONS)}")
        if not isinstance(operator, DiagonalOperator):
            raise ValueError(
                f"the gaussian process needs an operator that is diagonal in an orthonormal basis "
                f"({', '.join(diagonal_operators())}); {operator.name!r} is not, "
                "so its posterior is not per-coefficient: use the ihdm process with it"
            )
        if continuous_time and not operator.continuous:
            raise ValueError(
                f"the {operator.name!r} operator takes integer levels only; "
                "set model.continuous_time=False to train on t = k / K"
            )
        if not logsnr_min < logsnr_max:
            raise ValueError(f"need logsnr_min < logsnr_max, got {logsnr_min} and {logsnr_max}")
        final_scale = operator.spectrum(torch.tensor([self.K])).min().item()
        if final_scale <= 0:
            raise ValueError(
                f"the {operator.name!r} operator's spectrum reaches {final_scale:g} at level K; the gaussian "
                "posterior divides by it, so it must stay positive (use the ihdm process)"
            )
        if logsnr_sampling not in ("schedule", "logistic"):
            raise ValueError(f"logsnr_sampling={logsnr_sampling!r}; allowed: schedule, logistic")
        if logsnr_sampling == "logistic":
            truncation_interval(logistic_loc, logistic_scale)  # validates loc and scale
            self.require_plain_channel("training with logistic log-SNR sampling")
        self.continuous_time = continuous_time
        self.logsnr_min = float(logsnr_min)
        self.logsnr_max = float(logsnr_max)
        self.clip_denoised = clip_denoised
        self.logsnr_sampling = logsnr_sampling
        self.logistic_loc = float(logistic_loc)
        self.logistic_scale = float(logistic_scale)
        self.prediction = prediction

    def require_plain_channel(self, purpose: str) -> None:
        """Refuse unless A_k = I at every level: z = sqrt(sigmoid(a)) x + sqrt(sigmoid(-a)) eps then holds."""
        spectrum = self.operator.spectrum(torch.arange(self.K + 1))
        if not torch.allclose(spectrum, torch.ones_like(spectrum)):
            raise ValueError(
                f"{purpose} needs a plain Gaussian channel (the identity operator, or blur with blurring_sigma_max=0); "
                f"the {self.operator.name!r} operator degrades the signal"
            )

    def logsnr(self, t: torch.Tensor) -> torch.Tensor:
        return cosine_logsnr(t, self.logsnr_min, self.logsnr_max)

    def model_time(self, logsnr: torch.Tensor) -> torch.Tensor:
        """The network sees 1000 t(logsnr)."""
        return 1000 * cosine_time(logsnr, self.logsnr_min, self.logsnr_max)

    def marginal(self, k: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(alpha_t per coefficient [B, 1, H, W], sigma_t [B, 1, 1, 1], logsnr [B]) at levels k [B]."""
        logsnr = self.logsnr(k.float() / self.K)
        alpha = _expand(torch.sigmoid(logsnr).sqrt()) * self.operator.spectrum(k)
        return alpha, _expand(torch.sigmoid(-logsnr).sqrt()), logsnr

    def diffuse(self, x0: torch.Tensor, k: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """u_t = B^T(alpha_t B x0) + sigma_t eps, t = k / K. x0, eps [B, C, H, W], k [B]."""
        alpha, sigma, _ = self.marginal(k)
        return self.noisy_state(x0, eps, alpha, sigma)

    def noisy_state(
        self, x0: torch.Tensor, eps: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor
    ) -> torch.Tensor:
        """u = B^T(alpha B x0) + sigma eps for marginal scales already computed (``marginal``)."""
        return self.operator.from_basis(alpha * self.operator.to_basis(x0)) + sigma * eps

    def training_levels(self, batch: int, device, randomness: RandomSource) -> torch.Tensor:
        """Levels [batch]: t K with t ~ U[0, 1) in continuous time, else k ~ U{1..K}."""
        draw = as_randomness(randomness, device)
        if self.continuous_time:
            return draw.rand((batch,)) * self.K
        return draw.randint(1, self.K + 1, (batch,))

    def loss(self, net: Net, x0: torch.Tensor, randomness: RandomSource = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Mean over pixels of (target - net(u_t, t))^2, the target eps or v (``prediction``).
        x0 [B, ...] -> (loss [B], t [B]).

        schedule: t ~ U(0, 1] (or k / K, k ~ U{1..K}), log SNR from the cosine schedule.
        logistic: log SNR a ~ logistic(loc, scale) truncated to loc +- 4 scale, and the loss weighted by
            w(a) = scale tanh(2) / (sigmoid(u) sigmoid(-u)), u = (a - loc) / scale, which makes it an
            unbiased estimate of the integral over a that the information-theoretic NLL is built on. The
            integral is over the eps error; on this plain channel |eps - eps_hat|^2 = alpha^2 |v - v_hat|^2,
            so a v loss is weighted by alpha^2 = sigmoid(a) as well.
        """
        if self.logsnr_sampling == "logistic":
            logsnr, weight = sample_truncated_logistic(
                x0.shape[0], self.logistic_loc, self.logistic_scale, randomness, device=x0.device
            )
            eps = randn_like(x0, randomness)
            u, t = gaussian_channel(x0, logsnr, eps), cosine_time(logsnr, self.logsnr_min, self.logsnr_max)
            alpha, sigma = _expand(torch.sigmoid(logsnr).sqrt()), _expand(torch.sigmoid(-logsnr).sqrt())
            if self.prediction == "v":
                weight = weight * torch.sigmoid(logsnr)
        else:
            k = self.training_levels(x0.shape[0], x0.device, randomness)
            eps = randn_like(x0, randomness)
            alpha, sigma, logsnr = self.marginal(k)
            u, weight, t = self.noisy_state(x0, eps, alpha, sigma), 1.0, k.float() / self.K
        output = net(u, self.model_time(logsnr)).to(x0.dtype)
        target = self.training_target(x0, eps, alpha, sigma)
        return weight * (target - output).pow(2).flatten(1).mean(1), t.clamp(0, 1)

    def training_target(
        self, x0: torch.Tensor, eps: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor
    ) -> torch.Tensor:
        """What the network learns to predict at u_t = B^T(alpha_t B x0) + sigma_t eps, in pixels [B, C, H, W]:
        eps, or v = B^T((alpha_t B eps - sigma_t B x0) / r), r^2 = alpha_t^2 + sigma_t^2 per coefficient.
        alpha [B, 1, H, W] (or [B, 1, 1, 1]), sigma [B, 1, 1, 1]."""
        if self.prediction == "eps":
            return eps
        to_basis = self.operator.to_basis
        radius = (alpha**2 + sigma**2).sqrt()
        return self.operator.from_basis((alpha * to_basis(eps) - sigma * to_basis(x0)) / radius)

    def itd_eps_predictor(self, net: Net):
        """eps_hat(z, a) for z = sqrt(sigmoid(a)) x + sqrt(sigmoid(-a)) eps at any log SNR a [B]
        (``GaussianDenoiser.eps_at_logsnr``); needs a plain Gaussian channel."""
        self.require_plain_channel("the information-theoretic NLL estimator")
        return self.denoiser(net).eps_at_logsnr

    def denoiser(self, net: Net) -> "GaussianDenoiser":
        return GaussianDenoiser(self, net)

    def prior_component_std(self) -> float:
        """sigma_1, the noise std of u_K."""
        return float(torch.sigmoid(torch.tensor(-self.logsnr(torch.tensor(1.0)).item())).sqrt())

    def prior_component(self, x0: torch.Tensor) -> Tuple[torch.Tensor, float]:
        """The marginal of u_K given x0: mean B^T(alpha_1 B x0), std sigma_1."""
        k = torch.full((x0.shape[0],), self.K, device=x0.device, dtype=torch.long)
        alpha, _, _ = self.marginal(k)
        return self.operator.from_basis(alpha * self.operator.to_basis(x0)), self.prior_component_std()

    def forward_marginal_at_K(self, x0: torch.Tensor) -> Tuple[torch.Tensor, float]:
        """q(u_K | x0): the same Gaussian as ``prior_component``."""
        return self.prior_component(x0)

    def sampling_settings(self) -> Dict[str, Any]:
        """{'clip_denoised': whether x_hat is clipped to the data range in each step}."""
        return {"clip_denoised": self.clip_denoised}

    @staticmethod
    def posterior_variance(
        alpha_t: torch.Tensor, sigma_t: torch.Tensor, alpha_s: torch.Tensor, sigma_s: torch.Tensor
    ) -> torch.Tensor:
        """sigma_{t->s}^2 = sigma_{t|s}^2 sigma_s^2 / sigma_t^2, sigma_{t|s}^2 = sigma_t^2 - alpha_{t|s}^2 sigma_s^2:
        the variance of q(u_s | u_t, x) per coefficient [B, 1, H, W], s < t, from the marginals at t and s."""
        return (sigma_t**2 - (alpha_t / alpha_s) ** 2 * sigma_s**2) * sigma_s**2 / sigma_t**2

    def ddim_step(
        self, u_coefficients: torch.Tensor, x_coefficients: torch.Tensor, k: int, k_next: int, eta: float
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """The DDIM step t -> s (Song et al. 2021, Eq. 12) per coefficient of the basis, t = k / K, s = k_next / K,
        from u_t and an estimate x of the data, both in the basis [B, C, H, W]:
            eps = (B u_t - alpha_t x) / sigma_t,    c^2 = eta^2 sigma_{t->s}^2,
            u_s = alpha_s x + sqrt(sigma_s^2 - c^2) eps + c noise.
        eta = 1 gives the posterior q(u_s | u_t, x), eta = 0 the deterministic sampler, which with k_next > k
        runs backwards (encoding). Returns (mean [B, C, H, W] in the basis, c [B, 1, H, W])."""
        batch, device = u_coefficients.shape[0], u_coefficients.device
        alpha_t, sigma_t, _ = self.marginal(torch.full((batch,), k, device=device))
        alpha_s, sigma_s, _ = self.marginal(torch.full((batch,), k_next, device=device))
        eps = (u_coefficients - alpha_t * x_coefficients) / sigma_t
        if eta == 0:
            return alpha_s * x_coefficients + sigma_s * eps, torch.zeros_like(alpha_s)
        variance = eta**2 * self.posterior_variance(alpha_t, sigma_t, alpha_s, sigma_s)
        return alpha_s * x_coefficients + (sigma_s**2 - variance).sqrt() * eps, variance.sqrt()

    def encoding_trajectory(
        self, x0: torch.Tensor, levels: List[int], draw_noise: Callable[[], torch.Tensor]
    ) -> List[torch.Tensor]:
        """A trajectory of the forward chain at ``levels`` (K first): u_K from q(u_K | x0), then each next
        state from the posterior q(u_s | u_t, x0) per coefficient (``ddim_step`` with eta = 1 and the true x0),
        so that consecutive states are as correlated as the reverse process expects and the noise that
        ``reverse_step_noise`` recovers from them is close to N(0, 1) for a good denoiser."""
        x_coefficients = self.operator.to_basis(x0)
        u = self.diffuse(x0, torch.full((x0.shape[0],), levels[0], device=x0.device), draw_noise())
        states = [u]
        for k, k_next in zip(levels[:-1], levels[1:]):
            mean, std = self.ddim_step(self.operator.to_basis(u), x_coefficients, k, k_next, 1.0)
            u = self.operator.from_basis(mean + std * draw_noise())
            states.append(u)
        return states

    def elbo_terms(self, net: Net, x0: torch.Tensor, randomness: RandomSource = None) -> Dict[str, torch.Tensor]:
        """The discrete-time variational bound with K steps, per example, in nats (no clipping), less the prior term.

        transitions [B, K-1], level k = 2..K: KL(q(u_{k-1} | u_k, x0) || p(u_{k-1} | u_k)); both share
            the posterior variance v, so per coefficient it is 0.5 v alpha_s^2 / sigma_s^4 (x0 - x_hat)^2.
        reconstruction [B]: -log N(x0; x_hat(u_1), sigma_1^2 / alpha_1^2) per coefficient: the decoder's
            variance is that of u_1 / alpha_1 around x0, so as K grows the total tends to the
            continuous-time bound (exact for Gaussian data with the optimal denoiser).
        """
        x_coefficients, x_hat_at = self.operator.to_basis(x0), self.denoiser(net).x0
        transitions = []
        for k in range(2, self.K + 1):
            levels = torch.full((x0.shape[0],), k, device=x0.device, dtype=torch.long)
            u = self.diffuse(x0, levels, randn_like(x0, randomness))
            x_hat = x_hat_at(u, levels, clip=False)
            alpha_s, sigma_s, _ = self.marginal(levels - 1)
            variance = self.posterior_variance(*self.marginal(levels)[:2], alpha_s, sigma_s)
            transitions.append(
                0.5 * per_example_sum(variance * alpha_s**2 / sigma_s**4 * (x_coefficients - x_hat) ** 2)
            )
        ones = torch.ones(x0.shape[0], device=x0.device, dtype=torch.long)
        u1 = self.diffuse(x0, ones, randn_like(x0, randomness))
        x_hat = x_hat_at(u1, ones, clip=False)
        alpha_1, sigma_1, _ = self.marginal(ones)
        decoder_variance = (sigma_1 / alpha_1).pow(2).expand_as(x_coefficients)
        reconstruction = 0.5 * per_example_sum(
            (x_coefficients - x_hat) ** 2 / decoder_variance + torch.log(2 * math.pi * decoder_variance)
        )
        empty = torch.zeros(x0.shape[0], 0, device=x0.device)
        return {
            "transitions": torch.stack(transitions, dim=1) if transitions else empty,
            "reconstruction": reconstruction,
        }


class GaussianDenoiser(AncestralDenoiser):
    """The gaussian-process network as the samplers see it, per coefficient of the operator's basis.

    Gives the forward marginal ``marginal(k) -> (alpha [1, 1, H, W], sigma [1, 1, 1, 1])`` at any level the
    process was trained at (reals for continuous time), ``x0(u, k)``: x_hat in the basis from the network's eps
    or v (the process docstring's formulas; the one place where they are converted), the DDIM step and its
    inverse in the noise, and the log-SNR schedule for the time grids.
    """

    provides = ("ancestral", "marginal")

    def __init__(self, process: GaussianProcess, net: Net):
        super().__init__(process, net)
        self.continuous = process.continuous_time
        self.to_basis, self.from_basis = process.operator.to_basis, process.operator.from_basis

    def marginal(self, k: float, like: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(alpha [1, 1, H, W] per coefficient, sigma [1, 1, 1, 1]) at level k, on ``like``'s device."""
        alpha, sigma, _ = self.process.marginal(torch.full((1,), k, device=like.device))
        return alpha, sigma

    def marginal_rate(self, k: float, like: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """(alpha, sigma, d alpha / dk, d sigma / dk) at level k, shaped as ``marginal``'s: the schedule and the
        operator's spectrum differentiated in k by forward-mode autodiff (continuous-time processes)."""
        level = torch.full((1,), float(k), device=like.device)
        (alpha, sigma), (alpha_rate, sigma_rate) = torch.func.jvp(
            lambda levels: self.process.marginal(levels)[:2], (level,), (torch.ones_like(level),)
        )
        return alpha, sigma, alpha_rate, sigma_rate

    def flow_velocity(self, u: torch.Tensor, k: float) -> torch.Tensor:
        """du/dk of the probability-flow ODE at u [B, C, H, W] (pixels), level k: the path u_k = alpha_k x + sigma_k
        eps with x and eps held at their estimates (the DDIM ODE, whose marginals are the forward process's;
        Song et al. 2021), per coefficient c = B u:
            dc/dk = alpha'(k) x_hat + sigma'(k) eps_hat,   eps_hat = (c - alpha x_hat) / sigma.
        x_hat unclipped (the flow must stay smooth); one network evaluation."""
        alpha, sigma, alpha_rate, sigma_rate = self.marginal_rate(k, u)
        x_hat = self.x0(u, k, clip=False)
        return self.from_basis(alpha_rate * x_hat + sigma_rate * (self.to_basis(u) - alpha * x_hat) / sigma)

    def x0(self, u: torch.Tensor, k, clip: Optional[bool] = None) -> torch.Tensor:
        """x_hat in the basis [B, C, H, W] at u [B, C, H, W] in pixels and level k (a number, or [B]), clipped
        to the data range when ``clip`` (None: the process's ``clip_denoised``). One network evaluation:
            eps: x_hat = (B u - sigma eps_hat) / alpha;
            v:   x_hat = (alpha B u - sigma r v_hat) / r^2, r^2 = alpha^2 + sigma^2."""
        process = self.process
        levels = k if torch.is_tensor(k) else torch.full((u.shape[0],), k, device=u.device)
        alpha, sigma, logsnr = process.marginal(levels)
        output = self.to_basis(self.network(u, process.model_time(logsnr)))
        if process.prediction == "eps":
            x_hat = (self.to_basis(u) - sigma * output) / alpha
        else:
            radius_squared = alpha**2 + sigma**2
            x_hat = (alpha * self.to_basis(u) - sigma * radius_squared.sqrt() * output) / radius_squared
        if process.clip_denoised if clip is None else clip:
            x_hat = self.to_basis(self.from_basis(x_hat).clamp(*process.data_range))
        return x_hat

    def eps_at_logsnr(self, z: torch.Tensor, logsnr: torch.Tensor) -> torch.Tensor:
        """eps_hat at z = sqrt(sigmoid(a)) x + sqrt(sigmoid(-a)) eps on the plain channel, a = ``logsnr`` [B];
        with v prediction eps_hat = sigma z + alpha v_hat (r = 1 there)."""
        output = self.network(z, self.process.model_time(logsnr))
        if self.process.prediction == "eps":
            return output
        return _expand(torch.sigmoid(-logsnr).sqrt()) * z + _expand(torch.sigmoid(logsnr).sqrt()) * output

    def _ddim_mean_and_std(self, u: torch.Tensor, k: float, k_next: float, eta: float):
        x_hat = self.x0(u, torch.full((u.shape[0],), k, device=u.device))
        return self.process.ddim_step(self.to_basis(u), x_hat, k, k_next, eta)

    def ddim_step(self, u: torch.Tensor, k: float, k_next: float, eta: float, noise: torch.Tensor) -> torch.Tensor:
        """The DDIM step (``GaussianProcess.ddim_step``) with the network's x_hat, u [B, C, H, W] in pixels:
        u_s = alpha_s x_hat + sqrt(sigma_s^2 - c^2) eps_hat + c noise; k_next = 0 returns x_hat. Either way
        (k_next > k runs it backwards: DDIM inversion at eta = 0)."""
        if k_next == 0:
            return self.from_basis(self.x0(u, torch.full((u.shape[0],), k, device=u.device)))
        mean, std = self._ddim_mean_and_std(u, k, k_next, eta)
        return self.from_basis(mean if eta == 0 else mean + std * noise)

    def ancestral_step(self, u: torch.Tensor, k: float, k_next: float, noise: torch.Tensor) -> torch.Tensor:
        """The posterior step q(u_s | u_t, x = x_hat): DDIM at eta = 1."""
        return self.ddim_step(u, k, k_next, 1.0, noise)

    def ancestral_step_noise(self, u: torch.Tensor, k: float, k_next: float, u_next: torch.Tensor) -> torch.Tensor:
        """noise = (B u_s - mean) / c in the basis, c the posterior std (k_next > 0)."""
        mean, std = self._ddim_mean_and_std(u, k, k_next, 1.0)
        return (self.to_basis(u_next) - mean) / std

    def logsnr(self, k: float) -> float:
        """The log SNR of the schedule at level k."""
        return float(self.process.logsnr(torch.tensor(k / self.K, dtype=torch.float64)))

    def level_at_logsnr(self, logsnr: float) -> float:
        """The level whose log SNR is ``logsnr``: K t(logsnr) (``cosine_time``)."""
        process = self.process
        time = cosine_time(torch.tensor(logsnr, dtype=torch.float64), process.logsnr_min, process.logsnr_max)
        return float(self.K * time)
