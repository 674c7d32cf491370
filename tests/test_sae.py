import pytest
import torch

from clear_core.sae import SAE, SAEConfig


def test_forward_matches_definition():
    sae = SAE(SAEConfig(d_model=8, d_sae=32, l1_coefficient=0.1))
    with torch.no_grad():
        sae.b_enc.normal_()
        sae.b_dec.normal_()
    x = torch.randn(5, 8)
    out = sae(x)
    f = torch.relu((x - sae.b_dec) @ sae.W_enc + sae.b_enc)
    torch.testing.assert_close(out.features, f)
    torch.testing.assert_close(out.recon, f @ sae.W_dec + sae.b_dec)
    mse = (x - out.recon).pow(2).sum(-1).mean()
    torch.testing.assert_close(out.loss, mse + 0.1 * f.abs().sum(-1).mean())


def test_decoder_rows_unit_norm_after_normalize():
    sae = SAE(SAEConfig(d_model=8, d_sae=16))
    with torch.no_grad():
        sae.W_dec.mul_(3.7)
    sae.normalize_decoder()
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(16))


def test_training_reduces_loss_and_stats():
    torch.manual_seed(0)
    x = torch.randn(512, 8)
    sae = SAE(SAEConfig(d_model=8, d_sae=64, l1_coefficient=1e-3))
    before = sae.stats(x)
    opt = torch.optim.Adam(sae.parameters(), lr=1e-2)
    for _ in range(300):
        loss = sae(x).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        sae.normalize_decoder()
    after = sae.stats(x)
    assert after.fvu < 0.2 < before.fvu
    assert 0 < after.l0 <= 64 and 0 <= after.dead < 64 and after.n_rows == 512


def test_shape_and_config_errors():
    sae = SAE(SAEConfig(d_model=8, d_sae=16))
    with pytest.raises(ValueError, match=r"expects \(n, 8\)"):
        sae.encode(torch.randn(3, 7))
    with pytest.raises(ValueError, match="l1_coefficient"):
        SAEConfig(d_model=8, l1_coefficient=-1)
