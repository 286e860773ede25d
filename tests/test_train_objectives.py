"""Objectives registry, the recording model wrapper, the full-batch loader and the module's loss."""

from __future__ import annotations

import math

import pytest
import torch

from physkan.kan import KAN
from physkan.physics import (
    conservation_data,
    gullstrand_painleve_derivative,
    harmonic_oscillator_2d,
    metric_data,
)
from physkan.train import (
    OBJECTIVES,
    ConservationObjective,
    LagrangianObjective,
    MetricObjective,
    Objective,
    PhyskanModule,
    RecordingModel,
    RegressionObjective,
    make_objective,
    register_objective,
)
from physkan.train.data import FullBatchDataset, check_batch, full_batch_loader, shard_rows


def test_registry_has_builtin_types() -> None:
    assert set(OBJECTIVES) >= {"regression", "lagrangian", "conservation", "metric"}
    assert isinstance(make_objective("metric", mass=1.0), MetricObjective)
    assert make_objective("lagrangian", ridge=0.1).ridge == 0.1
    with pytest.raises(KeyError, match="registered: .*regression"):
        make_objective("no-such-type")


def test_register_plugin_objective() -> None:
    class Huber:
        def loss(self, model, batch):
            return torch.nn.functional.huber_loss(model(batch["x"]), batch["y"])

        def grid_samples(self, batch):
            return batch["x"]

    register_objective("huber-test", Huber)
    try:
        obj = make_objective("huber-test")
        assert isinstance(obj, Objective)
        register_objective("bad-test", lambda: object())
        with pytest.raises(TypeError, match="lacks loss"):
            make_objective("bad-test")
    finally:
        OBJECTIVES.pop("huber-test", None)
        OBJECTIVES.pop("bad-test", None)
    with pytest.raises(TypeError):
        register_objective("x", 3)  # type: ignore[arg-type]


def test_regression_objective_is_mse() -> None:
    x = torch.rand(10, 2, dtype=torch.float64)
    y = torch.rand(10, 1, dtype=torch.float64)
    loss = RegressionObjective().loss(lambda t: t[:, :1], {"x": x, "y": y})
    assert torch.allclose(loss, ((x[:, :1] - y) ** 2).mean())
    with pytest.raises(KeyError, match="no 'y' tensor"):
        RegressionObjective().loss(lambda t: t, {"x": x})


def test_physics_objectives_vanish_at_the_truth() -> None:
    d = conservation_data(harmonic_oscillator_2d, [(-1, 1)] * 4, 64, seed=0)
    energy = ConservationObjective(independence_weight=0.0)
    h1 = energy.loss(lambda z: (z[:, 0:1] ** 2 + z[:, 2:3] ** 2) / 2, d)
    assert float(h1.detach()) < 1e-12
    assert energy.grid_samples(d).shape == (64, 4)

    r = metric_data((1.2, 3.0), 64, seed=0)
    metric = MetricObjective(mass=0.5, derivative_given=True)
    assert float(metric.loss(lambda x: gullstrand_painleve_derivative(x, 0.5), r)) < 1e-20
    assert metric.grid_samples({"r": r["r"].reshape(-1)}).shape == (64, 1)

    state = torch.tensor([[0.3, 0.5], [-1.0, 1.5]], dtype=torch.float64)
    batch = {"state": state, "qddot": -torch.sin(state[:, :1])}
    lag = LagrangianObjective()
    truth = lag.loss(lambda s: s[:, 1] ** 2 / 2 + torch.cos(s[:, 0]), batch)
    assert float(truth.detach()) < 1e-24


def test_recording_model_records_first_call_only() -> None:
    kan = KAN([2, 3, 1], seed=0)
    rec = RecordingModel(kan, record=True)
    x = torch.rand(5, 2)
    y1 = rec(x)
    acts = rec.activations
    assert acts is not None and len(acts.edges) == 2
    assert torch.allclose(y1, kan(x), atol=1e-6)
    rec(x)
    assert rec.activations is acts
    plain = RecordingModel(kan, record=False)
    plain(x)
    assert plain.activations is None


def test_module_adds_regularisation() -> None:
    kan = KAN([2, 3, 1], seed=0).double()
    x = torch.rand(50, 2, dtype=torch.float64) * 2 - 1
    batch = {"x": x, "y": x[:, :1] ** 2}
    plain = PhyskanModule(kan, RegressionObjective()).compute_loss(batch)
    lamb = 0.01
    reg = PhyskanModule(kan, RegressionObjective(), lamb=lamb).compute_loss(batch)
    _, acts = kan.forward_with_activations(x)
    expected = plain + lamb * kan.regularization(acts)
    assert torch.allclose(reg, expected)
    with pytest.raises(TypeError, match="forward_with_activations"):
        PhyskanModule(torch.nn.Linear(2, 1), RegressionObjective(), lamb=0.1)
    with pytest.raises(ValueError, match="optimizer"):
        PhyskanModule(kan, RegressionObjective(), optimizer="sgd")  # type: ignore[arg-type]
    assert PhyskanModule(kan, RegressionObjective(), optimizer="adam").lr == 1e-2
    assert PhyskanModule(kan, RegressionObjective()).lr == 1.0


def test_shards_match_distributed_sampler() -> None:
    from torch.utils.data import DistributedSampler

    for n, world in ((10, 2), (7, 2), (7, 3), (1, 2)):
        for rank in range(world):
            ours = shard_rows(n, rank, world).tolist()
            ref = list(DistributedSampler(range(n), world, rank, shuffle=False))
            assert ours == ref
    rows = torch.cat([shard_rows(9, r, 4) for r in range(4)])
    assert set(rows.tolist()) == set(range(9))


def test_full_batch_loader_yields_whole_batch() -> None:
    x = torch.arange(12.0).reshape(6, 2)
    y = torch.arange(6.0)
    loader = full_batch_loader({"x": x, "y": y}, steps=3)
    batches = list(loader)
    assert len(batches) == 3 and len(loader) == 3
    assert all(torch.equal(b["x"], x) and torch.equal(b["y"], y) for b in batches)
    with pytest.raises(ValueError, match="same number of rows"):
        check_batch({"x": x, "y": y[:3]})
    with pytest.raises(ValueError, match="no tensors"):
        check_batch({})
    with pytest.raises(ValueError, match="steps"):
        FullBatchDataset({"x": x}, steps=0)
    assert math.isclose(check_batch({"x": x}), 6)


def test_dataset_batch_maps_keys() -> None:
    from physkan.problems import Dataset, load_problem, make_dataset
    from physkan.train import dataset_batch

    ds = make_dataset(load_problem("tutorial"))
    batch = dataset_batch(ds, "test")
    assert set(batch) == {"x", "y"} and torch.equal(batch["x"], ds.x_test)
    state, qddot = torch.rand(4, 2), torch.rand(4, 1)
    lag = Dataset(["q", "q_dot"], ["q_ddot"], state, qddot, state, qddot)
    assert set(dataset_batch(lag, problem_type="lagrangian")) == {"state", "qddot"}
    with pytest.raises(ValueError, match="problem_type"):
        dataset_batch(lag)
    metric = Dataset(["r"], ["delta_t"], state[:, :1], qddot, state[:, :1], qddot)
    assert set(dataset_batch(metric, problem_type="metric")) == {"r"}
