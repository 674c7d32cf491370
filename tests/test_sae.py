import pytest
import torch

from clear_core.sae import SAE, SAEConfig, sae_update, top_k


def test_forward_matches_definition():
    sae = SAE(SAEConfig(d_model=8, d_sae=32, l1_coefficient=0.1))
    with torch.no_grad():
        sae.b_enc.normal_()
        sae.b_dec.normal_()
        sae.W_dec.mul_(torch.rand(32, 1) + 0.5)  # rows of different norms
    x = torch.randn(5, 8)
    out = sae(x)
    f = torch.relu((x - sae.b_dec) @ sae.W_enc + sae.b_enc)
    torch.testing.assert_close(out.features, f)
    torch.testing.assert_close(out.recon, f @ sae.W_dec + sae.b_dec)
    mse = (x - out.recon).pow(2).sum(-1).mean()
    # SAELens' standard SAE: the L1 is weighted by each decoder row's norm
    torch.testing.assert_close(out.loss, mse + 0.1 * (f * sae.W_dec.norm(dim=1)).sum(-1).mean())


def test_default_init_follows_saelens():
    sae = SAE(SAEConfig(d_model=8, d_sae=16))
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.full((16,), 0.1))
    torch.testing.assert_close(sae.W_enc, sae.W_dec.t())
    assert not sae.b_dec.any() and not sae.b_enc.any()


def test_decoder_rows_unit_norm_after_normalize():
    sae = SAE(SAEConfig(d_model=8, d_sae=16))
    with torch.no_grad():
        sae.W_dec.mul_(3.7)
    sae.normalize_decoder()
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(16))


def test_fold_decoder_norm_keeps_the_function():
    sae = SAE(SAEConfig(d_model=8, d_sae=32))
    with torch.no_grad():
        sae.W_dec.mul_(torch.rand(32, 1) * 5 + 0.1)
        sae.b_enc.normal_()
    x = torch.randn(20, 8)
    before = sae(x)
    sae.fold_decoder_norm()
    after = sae(x)
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(32))
    torch.testing.assert_close(after.recon, before.recon, rtol=1e-5, atol=1e-5)
    assert torch.equal(after.features > 0, before.features > 0)


def test_topk_keeps_exactly_k_per_row():
    sae = SAE(SAEConfig(d_model=8, d_sae=64, kind="topk", k=5))
    with torch.no_grad():
        sae.b_enc.fill_(1.0)  # every pre-activation positive: exactly k survive
    f = sae.encode(torch.randn(10, 8))
    assert ((f > 0).sum(-1) == 5).all()
    pre = sae.pre_activation(torch.randn(3, 8))
    f = sae.activate(pre)
    kept = pre.gather(-1, pre.topk(5, -1).indices)
    torch.testing.assert_close(f.gather(-1, pre.topk(5, -1).indices), torch.relu(kept))


def test_batchtopk_trains_on_the_batch_and_infers_with_a_threshold():
    torch.manual_seed(0)
    sae = SAE(SAEConfig(d_model=8, d_sae=64, kind="batchtopk", k=4))
    x = torch.randn(50, 8)
    opt = torch.optim.Adam(sae.parameters(), lr=1e-2)
    for _ in range(30):
        out = sae_update(sae, opt, x)
    assert (out.features > 0).sum() <= 4 * 50  # k·n over the batch, not k per row
    assert float(sae.threshold) > 0 and "threshold" in sae.state_dict()
    sae.eval()
    pre = sae.pre_activation(x[:7])
    torch.testing.assert_close(sae.encode(x[:7]), pre * (pre > sae.threshold))
    # each row is edited on its own at inference: a row's features do not depend on its batch
    torch.testing.assert_close(sae.encode(x[:1]), sae.encode(x[:7])[:1])


def test_auxk_loss_pulls_on_dead_features_only():
    sae = SAE(SAEConfig(d_model=8, d_sae=32, kind="topk", k=2, dead_after=3))
    x = torch.randn(16, 8)
    assert sae(x).aux == 0.0  # nothing is dead before training
    sae._since_fired[:10] = 5  # features 0..9 dead
    out = sae(x)
    assert float(out.aux.detach()) > 0
    torch.testing.assert_close(out.loss, out.mse + sae.config.aux_coefficient * out.aux)
    sae.zero_grad()
    out.aux.backward()
    grad = sae.W_enc.grad.abs().sum(0)
    assert (grad[:10] > 0).any() and (grad[10:] == 0).all()
    sae.eval()
    assert sae(x).aux == 0.0  # AuxK is a training loss


def test_top_k_selects_what_torch_topk_selects():
    scores = torch.randn(200, 300, generator=torch.Generator().manual_seed(3))
    scores[5, :] = 0.0  # a row of ties: any k of them
    for k in (1, 7, 64, 299):
        values, indices = top_k(scores, k)
        expected = scores.topk(k, dim=-1)
        assert indices.shape == (200, k) and indices.dtype == torch.int64 and indices.is_contiguous()
        torch.testing.assert_close(values.sort(-1).values, expected.values.sort(-1).values)
        torch.testing.assert_close(scores.gather(1, indices), values)
        rows = [r for r in range(200) if r != 5]
        assert torch.equal(indices[rows].sort(-1).values, expected.indices[rows].sort(-1).values)
        assert len(set(indices[5].tolist())) == k
    small = torch.randn(10, 50)  # few rows, a gradient to keep or no numpy dtype: torch.topk itself
    torch.testing.assert_close(top_k(small, 4)[0], small.topk(4, sorted=False).values)
    tall = torch.randn(9000, 40, generator=torch.Generator().manual_seed(4))  # selected in blocks of rows
    indices = top_k(tall, 5)[1]
    assert indices.is_contiguous() and torch.equal(
        indices.sort(-1).values, tall.topk(5).indices.sort(-1).values
    )
    half = scores.to(torch.bfloat16)
    torch.testing.assert_close(top_k(half, 3)[0], half.topk(3, sorted=False).values)


@pytest.mark.parametrize("dead", [False, True])
@pytest.mark.parametrize("frozen", [False, True])
def test_sparse_topk_pass_has_the_dense_pass_loss_and_gradients(dead, frozen):
    """forward_topk (the search's step: sparse decoder, sparse encoder backward) against forward."""
    sae = SAE(
        SAEConfig(d_model=16, d_sae=64, kind="topk", k=5, dead_after=3), torch.Generator().manual_seed(1)
    )
    with torch.no_grad():
        sae.b_enc.normal_(0, 0.1)
        sae.b_dec.normal_(0, 0.1)
    if dead:  # AuxK on: its activations take the sparse backward too
        sae._since_fired[:40] = 5
    sae.requires_grad_(not frozen)  # the search's step 2: gradients reach the input only
    x = torch.randn(96, 16, generator=torch.Generator().manual_seed(2), requires_grad=True)
    found = []
    for forward in (sae.forward, sae.forward_topk):
        sae.zero_grad()
        x.grad = None
        out = forward(x)
        (out.loss + 0.3 * out.l1).backward()
        grads = [None if p.grad is None else p.grad.clone() for p in sae.parameters()]
        found.append((out.loss.detach(), out.recon.detach(), out.features.detach(), x.grad.clone(), grads))
    (loss, recon, features, g_x, grads), (loss_s, recon_s, features_s, g_x_s, grads_s) = found
    assert (float(torch.as_tensor(out.aux).detach()) > 0) == dead
    torch.testing.assert_close(loss_s, loss)
    torch.testing.assert_close(recon_s, recon)
    torch.testing.assert_close(features_s, features)
    torch.testing.assert_close(g_x_s, g_x)
    for dense, sparse in zip(grads, grads_s):
        assert (dense is None) == (sparse is None) == frozen
        if dense is not None:
            torch.testing.assert_close(sparse, dense)


@pytest.mark.parametrize("kind", ["relu", "topk", "batchtopk"])
def test_training_reduces_loss_and_stats(kind):
    torch.manual_seed(0)
    x = torch.randn(512, 8)
    sae = SAE(SAEConfig(d_model=8, d_sae=64, l1_coefficient=1e-3, kind=kind, k=8))
    before = sae.stats(x)
    opt = torch.optim.Adam(sae.parameters(), lr=1e-2)
    for _ in range(300):
        sae_update(sae, opt, x)
    after = sae.stats(x)
    assert after.fvu < 0.2 < before.fvu
    assert 0 < after.l0 <= 64 and 0 <= after.dead < 64 and after.n_rows == 512
    if kind == "topk":
        assert 7 < after.l0 <= 8  # k per row (fewer only where a top-k pre-activation is ≤ 0)


def test_old_artifact_config_loads_as_relu():
    # eraser.json written before SAE kinds existed stores only these three fields
    sae = SAE(SAEConfig(**{"d_model": 8, "d_sae": 16, "l1_coefficient": 0.03}))
    assert sae.config.kind == "relu"
    assert set(sae.state_dict()) == {"W_dec", "W_enc", "b_enc", "b_dec"}


def test_shape_and_config_errors():
    sae = SAE(SAEConfig(d_model=8, d_sae=16))
    with pytest.raises(ValueError, match=r"expects \(n, 8\)"):
        sae.encode(torch.randn(3, 7))
    with pytest.raises(ValueError, match="l1_coefficient"):
        SAEConfig(d_model=8, l1_coefficient=-1)
    with pytest.raises(ValueError, match="kind"):
        SAEConfig(d_model=8, kind="jumprelu")
    with pytest.raises(ValueError, match="k must be"):
        SAEConfig(d_model=8, d_sae=16, kind="topk", k=17)
