import threading

import pytest
import torch
from torch import nn

from clear_core.hooks import Handler, scoped_hooks


class Block(nn.Module):
    def forward(self, x):
        return (x * 2, "extra")


def test_hook_edits_inside_and_is_removed_after():
    block = Block()
    x = torch.ones(1, 2, 3)
    with scoped_hooks([Handler(block, lambda h: h + 1)]):
        assert torch.equal(block(x)[0], x * 2 + 1)
        assert block(x)[1] == "extra"
    assert torch.equal(block(x)[0], x * 2)
    assert not block._forward_hooks and not block._forward_pre_hooks


def test_removed_after_exception():
    block = Block()
    with pytest.raises(RuntimeError, match="boom"), scoped_hooks([Handler(block, lambda h: h + 1)]):
        raise RuntimeError("boom")
    assert not block._forward_hooks and not block._forward_pre_hooks


def test_shape_change_is_refused():
    block = Block()
    with (
        scoped_hooks([Handler(block, lambda h: h[:, :1])]),
        pytest.raises(ValueError, match="returned shape"),
    ):
        block(torch.ones(1, 2, 3))


def test_other_threads_do_not_see_the_hook():
    """A concurrent forward pass on the same module, from another context, is not edited."""
    block = Block()
    x = torch.ones(1, 2, 3)
    inside, done = threading.Event(), threading.Event()
    seen = {}

    def editor():
        with scoped_hooks([Handler(block, lambda h: h * 0)]):
            seen["editor"] = block(x)[0].clone()
            inside.set()
            done.wait(5)

    def bystander():
        inside.wait(5)
        seen["bystander"] = block(x)[0].clone()
        done.set()

    threads = [threading.Thread(target=editor), threading.Thread(target=bystander)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert torch.equal(seen["editor"], torch.zeros(1, 2, 3))
    assert torch.equal(seen["bystander"], x * 2)
    assert not block._forward_hooks


def test_nested_contexts_compose_in_order():
    block = Block()
    x = torch.ones(1, 1, 1)
    with scoped_hooks([Handler(block, lambda h: h + 1)]), scoped_hooks([Handler(block, lambda h: h * 10)]):
        assert block(x)[0].item() == (2 + 1) * 10
    assert not block._forward_hooks
