"""AdaFocus V1-TSM (spec §4, Sth-Sth): the official multi-part checkpoint (glancer / focuser / policy / fc, the
focuser's ResNet children as an indexed Sequential, TSM wrapper names) loads strictly, and the forward equals the
official eval forward written out from the spec (TSM-MobileNetV2 glance + its own head, one GRU step from h₀ = 0,
sigmoid mean, one integer crop per clip by slicing, TSM-ResNet-50, clip means); count_flops against §4's table."""
from __future__ import annotations

import pytest
import torch

import afnet_edge
from afnet_edge.checkpoint import CheckpointError, inspect_checkpoint
from afnet_edge.flops import count_flops
from test_adafocus import H, SHIFTED_MN2_BLOCKS, calibrate, gru_steps, poisoned_model, randomize, rel

CHILDREN = {"conv1": 0, "bn1": 1, "layer1": 4, "layer2": 5, "layer3": 6, "layer4": 7}   # torchvision ResNet children


def official_parts(sd: dict) -> dict:
    """Our state dict in the official V1-TSM file layout (spec §4), with the TemporalShift(net=conv) names."""
    glancer, focuser = {}, {}
    for k, v in sd.items():
        parts = k.split(".")
        if k.startswith("global_CNN."):
            if parts[1] == "features" and parts[3:5] == ["conv", "0"] and int(parts[2]) in SHIFTED_MN2_BLOCKS:
                k = k.replace(".conv.0.", ".conv.0.net.")
            glancer["net." + k[len("global_CNN."):]] = v
        elif k.startswith("local_CNN."):
            rest = ".".join(parts[2:])
            if parts[1].startswith("layer") and parts[3] == "conv1":
                rest = rest.replace("conv1.", "conv1.net.", 1)
            focuser[f"net.base_model.{CHILDREN[parts[1]]}.{rest}"] = v
    policy = {k[len("policy."):]: v for k, v in sd.items() if k.startswith("policy.")}
    fc = {k[len("fc."):]: v for k, v in sd.items() if k.startswith("fc.")}
    return {"glancer": glancer, "focuser": focuser, "policy": policy, "fc": fc, "epoch": 50, "acc": 47.0,
            "best_acc": 47.0, "optimizer": {}, "scaler": {}}


def test_v1_tsm_official_checkpoint_and_forward(tmp_path):
    TG, TL, P, C = 2, 3, 48, 6
    src = randomize(afnet_edge.create_model("adafocus_v1_tsm", num_classes=C, num_frames=TG, focus_frames=TL,
                                            patch_size=P), 61)
    g = torch.Generator().manual_seed(62)
    calibrate(src, torch.randn(2, TG, 3, H, H, generator=g), torch.randn(2, TL, 3, H, H, generator=g))
    obj = official_parts(src.state_dict())
    assert sum(".net." in k for k in obj["glancer"]) == 10 and sum(".conv1.net." in k for k in obj["focuser"]) == 16
    assert "net.base_model.4.0.conv1.net.weight" in obj["focuser"] and tuple(obj["fc"]["weight"].shape) == (C, 2048)
    path = str(tmp_path / "144x_sthv1.pth.tar")
    torch.save(obj, path)
    info = inspect_checkpoint(path)
    assert (info["kind"], info["num_classes"], info["num_frames"]) == ("official_adafocus_v1_tsm", C, TG)
    model = poisoned_model("adafocus_v1_tsm", num_classes=C, num_frames=TG, focus_frames=TL, patch_size=P)
    report = afnet_edge.load_checkpoint(model, path)
    assert report.kind == "official_adafocus_v1_tsm" and report.dropped == []
    glance, focus = torch.randn(2, TG, 3, H, H, generator=g), torch.randn(2, TL, 3, H, H, generator=g)
    with torch.no_grad():
        out = model(glance, focus)
        # spec §4: glancer maps + its own head, the policy on the channel-concatenated maps (GRU equations written
        # out), the sigmoid mean, ⌊a·(224 − P)⌋ slicing of all 3·T_L channels of a clip, focuser, clip means
        maps = src.global_CNN.features(glance.reshape(-1, 3, H, H))
        enc = src.policy.state_encoder(maps.reshape(2, TG * 1280, 7, 7))
        a = torch.sigmoid(src.policy.actor[0](gru_steps(src.policy.gru, enc[:, None])[:, 0]))
        patches = []
        for n in range(2):
            y0, x0 = (int(v) for v in torch.floor(a[n] * (H - P)).int())
            patches.append(focus[n].reshape(TL * 3, H, H)[:, y0:y0 + P, x0:x0 + P].reshape(TL, 3, P, P))
        l = src.local_CNN(torch.cat(patches)).mean((2, 3))
        ref = (src.global_CNN.classifier(maps.mean((2, 3))).view(2, TG, C).mean(1)
               + src.fc(l).view(2, TL, C).mean(1))
        fixed = model(glance, focus, locations=torch.rand(2, 1, 2, generator=g))
    assert out.locations.shape == (2, 1, 2) and out.step_logits is None and out.logits.shape == (2, C)
    assert float((out.locations[:, 0] - a).abs().max()) <= 1e-6
    assert len({tuple(torch.floor(r * (H - P)).int().tolist()) for r in a}) > 1    # the crop depends on the clip
    assert rel(out.logits, ref) <= 1e-4
    assert rel(fixed.logits, out.logits) > 1e-3                                      # locations= overrides
    # the ActivityNet-family V1 refuses the Sth-Sth file (and the reverse), naming the variant
    with torch.device("meta"), pytest.raises(CheckpointError, match="V1-TSM"):    # refused before any tensor
        afnet_edge.load_checkpoint(afnet_edge.create_model("adafocus_v1", num_classes=C, num_frames=4), path)
    with pytest.raises(ValueError, match="takes two clips"):
        model(glance)
    with pytest.raises(ValueError, match="frame_order"):
        afnet_edge.create_model("adafocus_v1_tsm", frame_order=True)


@pytest.mark.parametrize("patch,gflops", [(144, 23.5), (160, 27.5), (176, 33.7)])   # spec §4 (π 0.042)
def test_v1_tsm_count_flops_matches_spec(patch, gflops):
    with torch.device("meta"):
        model = afnet_edge.create_model("adafocus_v1_tsm", num_classes=174, patch_size=patch)
    res = count_flops(model)
    assert abs(res["official_gflops"] / gflops - 1) <= 0.005, res["official_gflops"]
    assert abs(res["per_stage"]["policy"]["official_gflops"] / 0.042 - 1) <= 0.01
    assert res["executed_gmacs_compact"] == pytest.approx(res["official_gflops"])
