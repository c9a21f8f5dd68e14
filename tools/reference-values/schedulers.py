#!/usr/bin/env python3
"""Prints the reference numbers of test/engines/diffusion/schedulers-reference.test.ts.

Every value that test asserts comes from here: diffusers' own schedulers (float32 torch tables,
as a UNet sees them) and the same formulas evaluated in float64 with numpy. The schedule is
Stable Diffusion's: scaled_linear, beta 0.00085 -> 0.012, T = 1000. docs/schedulers.md
("Reference values") says what each section is for.

Written against the diffusers 0.3x API (set_begin_index, final_sigmas_type,
LCMScheduler.get_scalings_for_boundary_condition_discrete) and torch 2.x on an x86-64 CPU (the
test's bit-exact float32 tables were taken with torch 2.13):

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install 'diffusers>=0.30,<0.40' torch numpy
    /tmp/ref/bin/python tools/reference-values/schedulers.py

Nothing here downloads a model: schedulers are built from their config values alone.
"""
import importlib

import numpy as np
import torch
from diffusers import (
    DDIMScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    LCMScheduler,
    PNDMScheduler,
)

SD = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000)
TABLE_T = [0, 1, 249, 259, 499, 749, 759, 999]


def g(x, digits=10):
    """A number as the test writes it: `digits` significant digits."""
    return f"{float(x):.{digits}g}"


def gs(values, digits=8):
    return "[" + ", ".join(g(v, digits) for v in values) + "]"


def section(title):
    print(f"\n== {title}")


def euler(spacing, offset=0, cls=EulerDiscreteScheduler):
    return cls(**SD, timestep_spacing=spacing, steps_offset=offset)


def ddim(spacing, offset, prediction="epsilon"):
    return DDIMScheduler(
        **SD, timestep_spacing=spacing, steps_offset=offset, set_alpha_to_one=False, clip_sample=False,
        prediction_type=prediction,
    )


def fixed_noise(module_name, value):
    """Makes a scheduler module's randn_tensor return `value` everywhere, so a stochastic step is reproducible by hand."""
    module = importlib.import_module(module_name)
    if not hasattr(module, "randn_tensor"):
        raise SystemExit(f"{module_name} has no randn_tensor: this diffusers version is not the one the script was written for")

    def randn_tensor(shape, generator=None, device=None, dtype=None, layout=None):
        return torch.full(tuple(shape), value, dtype=dtype or torch.float32, device=device)

    module.randn_tensor = randn_tensor


def float64_tables():
    section("beta, alpha_bar and sigma: float64 from the formulas, float32 from diffusers")
    betas = np.linspace(np.sqrt(0.00085), np.sqrt(0.012), 1000, dtype=np.float64) ** 2
    alpha_bar = np.cumprod(1.0 - betas)
    sigma = np.sqrt((1.0 - alpha_bar) / alpha_bar)
    s = euler("trailing")
    sigma32 = ((1 - s.alphas_cumprod) / s.alphas_cumprod) ** 0.5
    print(f"beta[0]={g(betas[0])} beta[999]={g(betas[999])}  (float32: {g(s.betas[0])}, {g(s.betas[999])})")
    for t in TABLE_T:
        print(
            f"t={t:<4} alpha_bar={g(alpha_bar[t])} (f32 {g(s.alphas_cumprod[t], 8)})"
            f"  sigma={g(sigma[t], 8)} (f32 {g(sigma32[t], 8)})"
        )
    print(f"sqrt(sigma_max^2 + 1) = {g(np.sqrt(sigma[999] ** 2 + 1), 8)} (f32 {g((sigma32[999] ** 2 + 1) ** 0.5, 8)})")


def torch_bits():
    section("torch float32 tables at t = 1, 500, 999 (repr of the float32 value)")
    for name, s in (("scaled_linear", euler("trailing")), ("linear (DDIMScheduler defaults)", DDIMScheduler())):
        print(name)
        print("  betas         ", [float(s.betas[i]) for i in (1, 500, 999)])
        print("  alphas_cumprod", [float(s.alphas_cumprod[i]) for i in (1, 500, 999)])


def euler_schedules():
    section("Euler discrete: timesteps and sigmas")
    for spacing, offset, n in (
        ("trailing", 0, 1), ("leading", 1, 1), ("trailing", 0, 2), ("trailing", 0, 4), ("leading", 1, 4), ("linspace", 0, 4),
    ):
        s = euler(spacing, offset)
        s.set_timesteps(n)
        print(f"{spacing} offset {offset} N={n}: ts={s.timesteps.tolist()} sigmas={gs(s.sigmas.tolist(), 7)}")
    s = euler("linspace")
    s.set_timesteps(8)
    ts = s.timesteps.tolist()
    print(f"linspace N=8: ts={gs(ts, 11)}; non-integers: {sum(1 for t in ts if t != int(t))}")

    section("Euler discrete: init_noise_sigma")
    for spacing, offset in (("trailing", 0), ("linspace", 0), ("leading", 1)):
        s = euler(spacing, offset)
        s.set_timesteps(4)
        print(f"{spacing} N=4: {g(s.init_noise_sigma, 8)}")
    print(f"leading offset 1, before set_timesteps (full schedule): {g(euler('leading', 1).init_noise_sigma, 8)}")
    print(f"DDIM: {g(ddim('leading', 1).init_noise_sigma)}")

    section("Euler discrete worked example: x = 1, eps = 0.5, N = 4 trailing, first step")
    s = euler("trailing")
    s.set_timesteps(4)
    t = s.timesteps[0]
    x = torch.ones(1)
    print(f"t={g(t)} unet input={g(s.scale_model_input(x, t)[0], 8)}")
    out = s.step(torch.full((1,), 0.5), t, x)
    print(f"x0={g(out.pred_original_sample[0], 8)} x_prev={g(out.prev_sample[0], 8)}")


def euler_ancestral():
    section("Euler ancestral, N = 4 trailing: sigma_up / sigma_down per step (as step() computes them)")
    s = euler("trailing", cls=EulerAncestralDiscreteScheduler)
    s.set_timesteps(4)
    for i in range(4):
        sigma_from, sigma_to = s.sigmas[i], s.sigmas[i + 1]
        up = (sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2) ** 0.5
        down = (sigma_to**2 - up**2) ** 0.5
        print(f"step {i}: sigma_up={g(up, 7)} sigma_down={g(down, 7)}")
    fixed_noise("diffusers.schedulers.scheduling_euler_ancestral_discrete", 0.3)
    t = s.timesteps[0]
    x = torch.ones(1)
    s.scale_model_input(x, t)
    out = s.step(torch.full((1,), 0.5), t, x)
    print(f"step from t=999 with x = 1, eps = 0.5, z = 0.3: x_prev={g(out.prev_sample[0], 8)}")


def ddim_values():
    section("DDIM timesteps")
    for spacing, offset, n in (("trailing", 0, 4), ("leading", 1, 4), ("leading", 1, 50)):
        s = ddim(spacing, offset)
        s.set_timesteps(n)
        print(f"{spacing} offset {offset} N={n}: {s.timesteps.tolist()}")

    section("DDIM worked examples: x = 1, model output 0.5, N = 4 trailing, t = 999 -> 749, eta = 0")
    for prediction in ("epsilon", "v_prediction"):
        s = ddim("trailing", 0, prediction)
        s.set_timesteps(4)
        out = s.step(torch.full((1,), 0.5), 999, torch.ones(1), eta=0.0)
        line = f"{prediction}: x0={g(out.pred_original_sample[0], 8)} x_prev={g(out.prev_sample[0], 8)}"
        if prediction == "v_prediction":
            # scheduling_ddim.py's pred_epsilon for v_prediction; step() does not return it.
            a = float(s.alphas_cumprod[999])
            line += f" eps_hat={g(a**0.5 * 0.5 + (1 - a) ** 0.5 * 1.0, 8)}"
        print(line)
    print(f"final_alpha_cumprod (set_alpha_to_one false) = {g(ddim('leading', 1).final_alpha_cumprod, 8)}")


def lcm_values():
    section("LCM timesteps (original_inference_steps 50)")
    s = LCMScheduler(**SD)
    for n in (1, 2, 4, 8):
        s.set_timesteps(n)
        print(f"N={n}: {s.timesteps.tolist()}")

    section("LCM boundary scalings (timestep_scaling 10)")
    for t in (999, 259, 19):
        c_skip, c_out = s.get_scalings_for_boundary_condition_discrete(t)
        print(f"t={t}: c_skip={g(c_skip, 7)} c_out={c_out:.12f}")

    section("LCM worked example: x = 1, eps = 0.5, t = 999 -> 759, z = 0.3, set_alpha_to_one false")
    fixed_noise("diffusers.schedulers.scheduling_lcm", 0.3)
    s = LCMScheduler(**SD, set_alpha_to_one=False)
    s.set_timesteps(4)
    out = s.step(torch.full((1,), 0.5), s.timesteps[0], torch.ones(1))
    print(f"denoised={g(out.denoised[0], 8)} x_prev={g(out.prev_sample[0], 8)}")


def img2img_and_pndm():
    section("img2img: N = 4 trailing, strength 0.5 (StableDiffusionImg2ImgPipeline.get_timesteps)")
    s = euler("trailing")
    s.set_timesteps(4)
    n, strength = 4, 0.5
    init_timestep = min(int(n * strength), n)
    t_start = max(n - init_timestep, 0)
    s.set_begin_index(t_start)
    remaining = s.timesteps[t_start:]
    noisy = s.add_noise(torch.zeros(1), torch.ones(1), remaining[:1])
    print(f"t_start={t_start} timesteps={remaining.tolist()} add_noise(0, 1)={g(noisy[0], 8)}")

    section("PNDM (skip_prk_steps), N = 4 leading, offset 1")
    p = PNDMScheduler(**SD, skip_prk_steps=True, steps_offset=1)
    p.set_timesteps(4)
    print(p.timesteps.tolist())


if __name__ == "__main__":
    import diffusers

    print(f"diffusers {diffusers.__version__}, torch {torch.__version__}, numpy {np.__version__}")
    float64_tables()
    torch_bits()
    euler_schedules()
    euler_ancestral()
    ddim_values()
    lcm_values()
    img2img_and_pndm()
