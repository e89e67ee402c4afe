"""ADM's classifiers at their published size (width 128, depth 2, 1,000 classes), random weights:
guided-diffusion's EncoderUNetModel against the studio's conversion. Needs the test-only
package guided-diffusion-sdk. Prints the relative error of the logits per preset.

    python scripts/adm_classifier_parity.py [adm-classifier64 ...]
"""

from __future__ import annotations

import sys
import time
import warnings

import torch

from diffusion_studio.core.convert import convert_classifier
from diffusion_studio.core.openai_flags import PRESETS

MULT = {
    "adm-classifier64": (1, 2, 3, 4),
    "adm-classifier128": (1, 1, 2, 3, 4),
    "adm-classifier256": (1, 1, 2, 2, 4, 4),
    "adm-classifier512": (0.5, 1, 1, 2, 2, 4, 4),
}


def main(presets: list[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        from guided_diffusion.unet import EncoderUNetModel
    for preset in presets or list(MULT):
        size = PRESETS[preset].image_size
        torch.manual_seed(0)
        theirs = EncoderUNetModel(
            image_size=size, in_channels=3, model_channels=128, out_channels=1000,
            num_res_blocks=2, attention_resolutions=[size // r for r in (32, 16, 8)],
            channel_mult=MULT[preset], num_head_channels=64, use_scale_shift_norm=True,
            resblock_updown=True, pool="attention",
        ).eval()  # fmt: skip
        with torch.no_grad():
            for p in theirs.parameters():
                p.add_(torch.randn_like(p) * 0.02)
        started = time.perf_counter()
        ours, _ = convert_classifier(theirs.state_dict(), PRESETS[preset])
        converted = time.perf_counter() - started
        x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
        t = torch.tensor([400])
        with torch.no_grad():
            a, b = theirs(x, t), ours(x, t)
        relative = float((a - b).abs().max() / a.abs().max())
        parameters = sum(p.numel() for p in ours.parameters()) / 1e6
        print(f"{preset}: {parameters:.1f} M parameters, converted in {converted:.1f} s, "
              f"logits relative error {relative:.2e}")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
