"""The discriminator's genre classifiers: AC-GAN's softmax and ReACGAN's contrastive D2D-CE."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_model, tiny_train

from gan.config import ModelConfig, from_dict
from gan.data.folders import load_labelled_folder
from gan.errors import GanError
from gan.models import build_discriminator
from gan.models.genre_heads import (
    NEGATIVE_MARGIN,
    POSITIVE_MARGIN,
    TEMPERATURE,
    ContrastiveGenreHead,
    SoftmaxGenreHead,
    data_to_data_cross_entropy,
)
from gan.train import RunFolder
from gan.train.loop import PhaseTrainer


def _unit(rows) -> torch.Tensor:
    return F.normalize(torch.tensor(rows, dtype=torch.float64), dim=1)


def _d2d_by_hand(embeddings, proxies, genres) -> float:
    """The paper's formula, one cover and one pair at a time."""
    total = 0.0
    for i in range(len(embeddings)):
        positive = min(float(embeddings[i] @ proxies[i]) - POSITIVE_MARGIN, 0) / TEMPERATURE
        terms = [math.exp(positive)]
        for j in range(len(embeddings)):
            if genres[j] != genres[i]:
                terms.append(math.exp(max(float(embeddings[i] @ embeddings[j]) - NEGATIVE_MARGIN, 0) / TEMPERATURE))
        total += -math.log(math.exp(positive) / sum(terms))
    return total / len(embeddings)


def test_d2d_cross_entropy_is_the_paper_s_formula():
    generator = torch.Generator().manual_seed(0)
    embeddings = F.normalize(torch.randn(9, 5, generator=generator, dtype=torch.float64), dim=1)
    table = F.normalize(torch.randn(3, 5, generator=generator, dtype=torch.float64), dim=1)
    genres = torch.tensor([0, 1, 2, 0, 0, 1, 2, 2, 1])
    loss = data_to_data_cross_entropy(embeddings, table[genres], genres)
    assert loss.item() == pytest.approx(_d2d_by_hand(embeddings, table[genres], genres), rel=1e-12)


def test_d2d_cross_entropy_stops_pulling_recognised_covers_and_pushing_distant_ones():
    # Cover 0 sits on its proxy and is orthogonal to cover 1 of another genre; cover 1 is far from
    # its own proxy and at cosine 0.6 from cover 2, also of another genre.
    embeddings = _unit([[1, 0, 0], [0, 1, 0], [0, 0.6, 0.8]]).requires_grad_(True)
    proxies = _unit([[1, 0, 0], [0, 0, 1], [0, 0, 1]])
    genres = torch.tensor([0, 1, 2])
    loss = data_to_data_cross_entropy(embeddings, proxies, genres)
    assert loss.item() == pytest.approx(_d2d_by_hand(embeddings.detach(), proxies, genres), rel=1e-12)
    # Cover 0 is at its proxy (positive term 0) and below the negative margin with both others (each
    # counts exp(0)): it has no gradient left to give. The others are still pulled and pushed.
    (grad,) = torch.autograd.grad(loss, embeddings)
    assert torch.count_nonzero(grad[0]) == 0
    assert grad[1].abs().sum() > 0 and grad[2].abs().sum() > 0


def test_d2d_cross_entropy_does_not_push_covers_of_one_genre_apart():
    embeddings = _unit([[1, 0, 1, 0], [0.9, 0.1, 0.3, 0], [0, 1, 0, 0]])
    proxies = _unit([[1, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0]])
    same = data_to_data_cross_entropy(embeddings, proxies, torch.tensor([0, 0, 1]))
    # Cover 1 turned away from cover 0 (same genre), as close as before to its proxy and to cover 2.
    moved = embeddings.clone()
    moved[1] = _unit([[0.9, 0.1, 0, 0.3]])[0]
    assert moved[1] @ embeddings[0] < embeddings[1] @ embeddings[0]
    assert data_to_data_cross_entropy(moved, proxies, torch.tensor([0, 0, 1])).item() == pytest.approx(same.item())
    # Labelled as different genres, the same two close covers are pushed apart: a larger loss.
    assert data_to_data_cross_entropy(embeddings, proxies, torch.tensor([0, 2, 1])) > same


def test_the_contrastive_head_ranks_genres_by_their_proxies():
    torch.manual_seed(0)
    head = ContrastiveGenreHead(features=6, num_genres=3)
    features = torch.randn(10, 6)
    output = head(features)
    assert torch.allclose(output.norm(dim=1), torch.ones(10))
    logits = head.logits(output)
    proxies = F.normalize(head.proxies.weight, dim=1)
    assert torch.allclose(logits, output @ proxies.T / TEMPERATURE)
    assert torch.equal(logits.argmax(1), (output @ proxies.T).argmax(1))
    with pytest.raises(ValueError, match="one genre per cover"):
        head.loss(output, torch.full((10, 3), 1 / 3))


def test_the_softmax_head_is_the_ac_gan_classifier_with_its_old_weight_names():
    torch.manual_seed(0)
    head = SoftmaxGenreHead(6, 3)
    features, genres = torch.randn(5, 6), torch.tensor([0, 2, 1, 1, 0])
    assert torch.equal(head.logits(head(features)), head(features))
    assert head.loss(head(features), genres) == F.cross_entropy(head(features), genres)
    discriminator = build_discriminator(tiny_model(genres=["a", "b", "c"]))
    assert {"genre_head.weight", "genre_head.bias"} <= set(discriminator.state_dict())


@pytest.mark.parametrize("architecture", ["resnet", "dcgan"])
def test_both_architectures_take_the_contrastive_head(architecture):
    model = tiny_model(genres=["a", "b", "c"], architecture=architecture, genre_classifier="contrastive")
    discriminator = build_discriminator(model)
    assert "genre_head.proxies.weight" in discriminator.state_dict()
    realness, output = discriminator(torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 0]))
    assert realness.shape == (4,) and discriminator.genre_head.logits(output).shape == (4, 3)
    assert torch.allclose(output.norm(dim=1), torch.ones(4), atol=1e-6)


def test_configs_written_before_the_choice_read_as_softmax():
    old = {"resolution": 32, "genres": ["a", "b"], "architecture": "resnet"}
    assert from_dict(ModelConfig, old, "old.json").genre_classifier == "softmax"
    with pytest.raises(GanError, match=r"new\.json: .*genre_classifier"):
        from_dict(ModelConfig, {**old, "genre_classifier": "cosine"}, "new.json")


def test_a_contrastive_run_trains_and_checkpoints_its_head(tmp_path, demo_dir):
    from gan.checkpoint import read_checkpoint_config

    data = load_labelled_folder(demo_dir / "labelled", 32)
    model = tiny_model(genres=data.genres, genre_classifier="contrastive")
    trainer = PhaseTrainer(RunFolder(tmp_path / "run"), model, tiny_train(mode_seeking_weight=1.0), data,
                           progress=False)
    before = trainer.nets.discriminator.genre_head.proxies.weight.detach().clone()
    for _ in range(2):
        stats = trainer.train_step(*trainer.next_batch())
    assert all(torch.isfinite(v) for v in stats.values())
    assert stats["d_genre"] > 0 and 0 <= stats["genre_acc"] <= 1 and 0 <= stats["fake_genre_acc"] <= 1
    assert not torch.equal(before, trainer.nets.discriminator.genre_head.proxies.weight)
    saved = trainer.save_checkpoint()
    assert read_checkpoint_config(saved)["model"].genre_classifier == "contrastive"
    assert json.loads((saved / "config.json").read_text())["model"]["genre_classifier"] == "contrastive"


def test_tag_sets_need_the_softmax_classifier(tmp_path, demo_dir):
    data = load_labelled_folder(demo_dir / "labelled", 32)
    model = tiny_model(genres=data.genres, genre_classifier="contrastive")
    with pytest.raises(GanError, match="--tag-sets needs --genre-classifier softmax: the contrastive classifier"):
        PhaseTrainer(RunFolder(tmp_path / "run"), model, tiny_train(tag_sets=True), data, progress=False)


def _d2d_on_one_rank(rank: int, world: int, store: str, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    embeddings, proxies, genres = _a_batch()
    rows = slice(rank * len(genres) // world, (rank + 1) * len(genres) // world)
    mine = embeddings[rows].clone().requires_grad_(True)
    loss = data_to_data_cross_entropy(mine, proxies[rows], genres[rows])
    loss.backward()
    torch.save({"loss": loss.detach(), "grad": mine.grad}, f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


def _a_batch():
    generator = torch.Generator().manual_seed(3)
    embeddings = F.normalize(torch.randn(12, 6, generator=generator, dtype=torch.float64), dim=1)
    genres = torch.randint(3, (12,), generator=generator)
    proxies = F.normalize(torch.randn(3, 6, generator=generator, dtype=torch.float64), dim=1)[genres]
    return embeddings, proxies, genres


def test_d2d_cross_entropy_over_two_processes_is_the_global_batch_s(tmp_path):
    """Under torchrun each rank's covers meet the negatives of every rank, and gradients reach the
    covers they came from: averaged as DDP averages, two ranks give one process's loss and gradient."""
    import torch.multiprocessing as mp

    mp.spawn(_d2d_on_one_rank, args=(2, str(tmp_path / "store"), str(tmp_path)), nprocs=2)
    embeddings, proxies, genres = _a_batch()
    embeddings.requires_grad_(True)
    loss = data_to_data_cross_entropy(embeddings, proxies, genres)
    loss.backward()
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    assert (ranks[0]["loss"] + ranks[1]["loss"]).item() / 2 == pytest.approx(loss.item(), rel=1e-12)
    gathered = torch.cat([ranks[0]["grad"], ranks[1]["grad"]]) / 2  # DDP's average over 2 ranks
    torch.testing.assert_close(gathered, embeddings.grad, rtol=1e-10, atol=1e-12)
