"""PCGrad against hand-computed toys: losses linear in the parameters, so each task's gradient is known."""
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn import Parameter

from trainers.pcgrad import pcgrad_backward, project_conflicting


def linear_loss(param, gradient):
    """A loss whose gradient with respect to `param` is `gradient`."""
    return (param * torch.tensor(gradient)).sum()


def test_conflicting_gradients_are_projected_onto_each_others_normal_plane():
    shared = Parameter(torch.zeros(2))
    # g_a = [1, 0], g_b = [-1, 1]: g_a . g_b = -1 < 0.
    # g_a' = g_a + 1/2 g_b = [0.5, 0.5];  g_b' = g_b + 1/1 g_a = [0, 1];  sum = [0.5, 1.5].
    pcgrad_backward({"a": linear_loss(shared, [1.0, 0.0]), "b": linear_loss(shared, [-1.0, 1.0])}, [shared])
    assert torch.allclose(shared.grad, torch.tensor([0.5, 1.5]))


def test_non_conflicting_gradients_are_summed_unchanged():
    shared = Parameter(torch.zeros(2))
    pcgrad_backward({"a": linear_loss(shared, [1.0, 0.0]), "b": linear_loss(shared, [1.0, 1.0])}, [shared])
    assert torch.allclose(shared.grad, torch.tensor([2.0, 1.0]))


def test_projection_sees_all_shared_parameters_as_one_vector():
    first, second = Parameter(torch.zeros(2)), Parameter(torch.zeros(1))
    # Flattened: g_a = [1, 0 | 0], g_b = [-1, 0 | 1]; on `first` alone they would look opposite.
    # g_a . g_b = -1, |g_b|^2 = 2, |g_a|^2 = 1: g_a' = [0.5, 0 | 0.5], g_b' = [0, 0 | 1].
    losses = {
        "a": linear_loss(first, [1.0, 0.0]) + linear_loss(second, [0.0]),
        "b": linear_loss(first, [-1.0, 0.0]) + linear_loss(second, [1.0]),
    }
    pcgrad_backward(losses, [first, second])
    assert torch.allclose(first.grad, torch.tensor([0.5, 0.0]))
    assert torch.allclose(second.grad, torch.tensor([1.5]))


def test_only_the_conflicting_pair_is_projected_among_three_tasks():
    shared = Parameter(torch.zeros(3))
    losses = {
        "a": linear_loss(shared, [1.0, 0.0, 0.0]),
        "b": linear_loss(shared, [-1.0, 1.0, 0.0]),
        "c": linear_loss(shared, [0.0, 0.0, 1.0]),  # orthogonal to both: untouched, touches nothing
    }
    stats = pcgrad_backward(losses, [shared], generator=torch.Generator().manual_seed(0))
    assert torch.allclose(shared.grad, torch.tensor([0.5, 1.5, 1.0]))
    assert stats.projections == 2
    assert stats.cosine[("a", "b")] == pytest.approx(-(0.5**0.5))
    assert stats.cosine[("a", "c")] == 0.0


def test_the_projected_gradient_is_projected_again_against_the_next_task():
    gradients = {"a": torch.tensor([1.0, 0.0]), "b": torch.tensor([0.0, 1.0]), "c": torch.tensor([-1.0, -1.0])}
    orders = {"a": ["c", "b"], "b": ["a", "c"], "c": ["a", "b"]}
    # a meets c: a . c = -1, |c|^2 = 2 -> [0.5, -0.5]; that now conflicts with b (-0.5 < 0) -> [0.5, 0].
    projected, _ = project_conflicting(gradients, orders)
    assert torch.allclose(projected["a"], torch.tensor([0.5, 0.0]))


def test_the_order_of_the_other_tasks_matters():
    gradients = {"a": torch.tensor([1.0, 0.0]), "b": torch.tensor([0.0, 1.0]), "c": torch.tensor([-1.0, -1.0])}
    orders = {"a": ["b", "c"], "b": ["a", "c"], "c": ["a", "b"]}
    # a . b = 0: no projection; then off c -> [0.5, -0.5], which is final.
    projected, _ = project_conflicting(gradients, orders)
    assert torch.allclose(projected["a"], torch.tensor([0.5, -0.5]))


def test_projection_uses_the_other_tasks_original_gradients():
    gradients = {"a": torch.tensor([1.0, 0.0]), "b": torch.tensor([-1.0, 1.0])}
    projected, _ = project_conflicting(gradients, {"a": ["b"], "b": ["a"]})
    # b is projected off the original a = [1, 0], not off a's projection [0.5, 0.5].
    assert torch.allclose(projected["b"], torch.tensor([0.0, 1.0]))


def test_orders_must_list_every_other_task_once():
    gradients = {"a": torch.ones(1), "b": torch.ones(1), "c": torch.ones(1)}
    with pytest.raises(ValueError, match=r"orders\['a'\]"):
        project_conflicting(gradients, {"a": ["b", "b"], "b": ["a", "c"], "c": ["a", "b"]})


def test_random_order_comes_from_the_generator_alone():
    results = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        shared = Parameter(torch.zeros(2))
        losses = {
            "a": linear_loss(shared, [1.0, 0.0]),
            "b": linear_loss(shared, [0.0, 1.0]),
            "c": linear_loss(shared, [-1.0, -1.0]),
        }
        pcgrad_backward(losses, [shared], generator=torch.Generator().manual_seed(5))
        results.append(shared.grad)
    assert torch.equal(results[0], results[1])


def test_each_head_gets_only_its_own_tasks_gradient():
    shared, head_a, head_b = Parameter(torch.zeros(2)), Parameter(torch.zeros(1)), Parameter(torch.zeros(1))
    losses = {
        "a": linear_loss(shared, [1.0, 0.0]) + linear_loss(head_a, [3.0]),
        "b": linear_loss(shared, [-1.0, 1.0]) + linear_loss(head_b, [-2.0]),
    }
    pcgrad_backward(losses, [shared], {"a": [head_a], "b": [head_b]})
    assert head_a.grad.tolist() == [3.0] and head_b.grad.tolist() == [-2.0]


def test_head_of_a_task_absent_from_the_step_keeps_grad_none():
    shared, head_a, head_c = Parameter(torch.zeros(2)), Parameter(torch.zeros(1)), Parameter(torch.zeros(1))
    losses = {"a": linear_loss(shared, [1.0, 0.0]) + linear_loss(head_a, [1.0]), "b": linear_loss(shared, [0.0, 1.0])}
    pcgrad_backward(losses, [shared], {"a": [head_a], "c": [head_c]})
    assert head_c.grad is None


def test_shared_parameter_no_loss_reaches_keeps_grad_none():
    shared, unused = Parameter(torch.zeros(2)), Parameter(torch.zeros(2))
    pcgrad_backward({"a": linear_loss(shared, [1.0, 0.0]), "b": linear_loss(shared, [-1.0, 1.0])}, [shared, unused])
    assert unused.grad is None


def test_unreached_shared_parameter_keeps_grad_none_alongside_heads():
    used, unused, head_a = Parameter(torch.zeros(1)), Parameter(torch.zeros(1)), Parameter(torch.zeros(1))
    losses = {"a": linear_loss(used, [1.0]) + linear_loss(head_a, [1.0]), "b": linear_loss(used, [2.0])}
    pcgrad_backward(losses, [used, unused], {"a": [head_a]})
    assert unused.grad is None and used.grad.tolist() == [3.0] and head_a.grad.tolist() == [1.0]


def test_head_its_loss_does_not_reach_keeps_grad_none():
    shared, head = Parameter(torch.zeros(2)), Parameter(torch.zeros(1))
    pcgrad_backward({"a": linear_loss(shared, [1.0, 0.0])}, [shared], {"a": [head]})
    assert head.grad is None


def test_gradients_are_added_to_existing_grads():
    shared, head = Parameter(torch.zeros(2)), Parameter(torch.zeros(1))
    shared.grad, head.grad = torch.ones(2), torch.ones(1)
    losses = {"a": linear_loss(shared, [1.0, 0.0]) + linear_loss(head, [2.0]), "b": linear_loss(shared, [-1.0, 1.0])}
    pcgrad_backward(losses, [shared], {"a": [head]})
    assert torch.allclose(shared.grad, torch.tensor([1.5, 2.5])) and head.grad.tolist() == [3.0]


def test_mean_reduction_halves_the_sum_of_two_tasks():
    shared = Parameter(torch.zeros(2))
    losses = {"a": linear_loss(shared, [1.0, 0.0]), "b": linear_loss(shared, [-1.0, 1.0])}
    pcgrad_backward(losses, [shared], reduction="mean")
    assert torch.allclose(shared.grad, torch.tensor([0.25, 0.75]))


def test_frozen_shared_parameter_is_skipped():
    shared, frozen = Parameter(torch.zeros(2)), Parameter(torch.zeros(2), requires_grad=False)
    pcgrad_backward({"a": linear_loss(shared, [1.0, 0.0]) + (frozen * 1.0).sum()}, [shared, frozen])
    assert frozen.grad is None and shared.grad.tolist() == [1.0, 0.0]


def test_loss_without_gradient_counts_as_a_zero_gradient():
    shared = Parameter(torch.zeros(2))
    pcgrad_backward({"a": linear_loss(shared, [1.0, 2.0]), "mnr": torch.tensor(0.0)}, [shared])
    assert shared.grad.tolist() == [1.0, 2.0]


def test_losses_sharing_one_forward_graph_work():
    shared = Parameter(torch.ones(2))
    hidden = shared * 2.0  # one forward pass feeding both tasks
    losses = {"a": (hidden * torch.tensor([1.0, 0.0])).sum(), "b": (hidden * torch.tensor([0.0, 1.0])).sum()}
    pcgrad_backward(losses, [shared])
    assert shared.grad.tolist() == [2.0, 2.0]


def test_a_single_task_gets_its_plain_gradient_on_a_real_module():
    torch.manual_seed(0)
    encoder, head = torch.nn.Linear(4, 3), torch.nn.Linear(3, 1)
    inputs = torch.randn(5, 4)
    head(torch.tanh(encoder(inputs))).pow(2).mean().backward()
    expected = [p.grad.clone() for p in [*encoder.parameters(), *head.parameters()]]
    encoder.zero_grad(set_to_none=True)
    head.zero_grad(set_to_none=True)
    loss = head(torch.tanh(encoder(inputs))).pow(2).mean()
    pcgrad_backward({"a": loss}, list(encoder.parameters()), {"a": list(head.parameters())})
    for param, grad in zip([*encoder.parameters(), *head.parameters()], expected):
        assert torch.allclose(param.grad, grad)


def test_adamw_leaves_the_head_of_an_absent_task_untouched():
    shared, head_a, head_c = Parameter(torch.ones(2)), Parameter(torch.ones(1)), Parameter(torch.ones(1))
    optimizer = torch.optim.AdamW([shared, head_a, head_c], lr=0.1, weight_decay=0.1, foreach=False)
    losses = {"a": linear_loss(shared, [1.0, 0.0]) + linear_loss(head_a, [1.0]), "b": linear_loss(shared, [0.0, 1.0])}
    pcgrad_backward(losses, [shared], {"a": [head_a], "c": [head_c]})
    optimizer.step()
    assert head_c.item() == 1.0 and head_c not in optimizer.state
    assert head_a.item() != 1.0


@pytest.mark.parametrize(
    "losses, heads, kwargs, message",
    [
        ({}, {}, {}, "at least one task loss"),
        ({"a": torch.ones(2, requires_grad=True)}, {}, {}, "task 'a' must be a scalar"),
        ({"a": torch.ones((), requires_grad=True)}, {"a": "shared"}, {}, "also listed as 'shared'"),
        ({"a": torch.ones((), requires_grad=True)}, {}, {"reduction": "max"}, "reduction"),
    ],
)
def test_bad_arguments_are_named(losses, heads, kwargs, message):
    shared = Parameter(torch.zeros(1))
    task_params = {task: [shared] for task in heads}
    with pytest.raises(ValueError, match=message):
        pcgrad_backward(losses, [shared], task_params, **kwargs)


# ---- data parallel: each task's gradient averaged over ranks before the projection ----


def _distributed_worker(rank, init_file, result_dir):
    torch.set_num_threads(1)  # as DataLoader workers do after a fork
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    shared, head_a, head_b = Parameter(torch.zeros(2)), Parameter(torch.zeros(1)), Parameter(torch.zeros(1))
    # Rank 0: g_a = [2, 0], g_b = [-2, 0]; rank 1: g_a = [0, 0], g_b = [0, 2]. Means: [1, 0] and [-1, 1],
    # the first toy's pair, so the update is [0.5, 1.5]. Head a is reached on rank 0 only: mean [1.5].
    losses = [
        {"a": linear_loss(shared, [2.0, 0.0]) + linear_loss(head_a, [3.0]), "b": linear_loss(shared, [-2.0, 0.0])},
        {"a": linear_loss(shared, [0.0, 0.0]), "b": linear_loss(shared, [0.0, 2.0])},
    ][rank]
    pcgrad_backward(losses, [shared], {"a": [head_a], "b": [head_b]}, generator=torch.Generator().manual_seed(rank))
    torch.save((shared.grad, head_a.grad, head_b.grad), os.path.join(result_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


def test_ranks_apply_the_pcgrad_of_the_rank_averaged_gradients(tmp_path):
    # fork: the children reuse this process's imports, so the test takes a fraction of a second.
    mp.start_processes(_distributed_worker, args=(tmp_path / "init", tmp_path), nprocs=2, start_method="fork")
    for rank in range(2):
        shared_grad, head_a_grad, head_b_grad = torch.load(tmp_path / f"rank{rank}.pt")
        assert shared_grad.tolist() == [0.5, 1.5] and head_a_grad.tolist() == [1.5] and head_b_grad is None
