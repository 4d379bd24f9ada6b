"""Covers with several genre tags: how they are written, loaded, packed, drawn and trained on."""

import json

import numpy as np
import pytest
import torch
from conftest import tiny_model, tiny_train, write_checkpoint
from PIL import Image

from gan.data import demo
from gan.data.batches import RandomBatches
from gan.data.folders import load_dataset
from gan.data.pack import TAGS_FILE, open_pack, write_pack
from gan.errors import GanError
from gan.models import build_discriminator, build_generator
from gan.tags import mix_name, mix_weights, parse_mix, split_tags, tag_matrix, tag_pair_counts
from gan.train import RunFolder
from gan.train.loop import PhaseTrainer

GENRES = ["rock", "jazz", "electronic", "r+b"]
TAGGED_GENRES = ("pop", "metal", "jazz", "classical")
# Of the first 12 demo covers per genre of TAGGED_GENRES, these borrow from another of them (drawn
# once from `demo_cover_tags`, and checked against the drawing itself below).
TWO_TAGS = {("pop", 2): ("pop", "jazz"), ("pop", 6): ("pop", "metal"), ("pop", 10): ("pop", "metal"),
            ("classical", 5): ("classical", "jazz")}


@pytest.fixture(scope="module")
def tagged_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tagged")
    demo.write_demo_dataset(out, per_genre=12, unlabelled=0, size=32, seed=0, genres=TAGGED_GENRES, workers=1)
    return out / "labelled"


# --- writing tags and mixes ------------------------------------------------------------------

@pytest.mark.parametrize("text, mix", [
    ("jazz", {"jazz": 1.0}),
    ("jazz+electronic", {"jazz": 0.5, "electronic": 0.5}),
    ("jazz:0.7,electronic:0.3", {"jazz": 0.7, "electronic": 0.3}),
    ("jazz:3, rock:1", {"jazz": 0.75, "rock": 0.25}),
    ("r+b", {"r+b": 1.0}),  # a genre whose name holds the joiner
    ("r+b+jazz", {"r+b": 0.5, "jazz": 0.5}),
])
def test_a_mix_is_read_in_each_written_form(text, mix):
    parsed = parse_mix(text, GENRES)
    assert parsed.keys() == mix.keys() and all(parsed[k] == pytest.approx(v) for k, v in mix.items())


@pytest.mark.parametrize("text, message", [
    ("polka", "unknown genre 'polka'; this model knows: rock, jazz, electronic, r+b"),
    ("jazz+polka", "unknown genre 'polka' in the mix 'jazz+polka'"),
    ("jazz:0.7,polka:0.3", "unknown genre 'polka' in the mix"),
    ("jazz:x,rock:1", "the weight of 'jazz' must be a positive number, got 'x'"),
    ("jazz:-1,rock:1", "the weight of 'jazz' must be a positive number, got '-1'"),
    ("jazz:0,rock:1", "must be a positive number, got '0'"),
    ("jazz:nan,rock:1", "must be a positive number, got 'nan'"),
    ("jazz:1,jazz:2", "'jazz' appears twice"),
    ("jazz+jazz", "a genre appears twice"),
])
def test_a_bad_mix_is_one_line_naming_the_problem(text, message):
    with pytest.raises(GanError) as error:
        parse_mix(text, GENRES)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_tag_cells_pairs_and_names():
    assert split_tags(" jazz; electronic ;;jazz ") == ["jazz", "electronic"]
    assert tag_matrix([("rock",), ("jazz",)], GENRES) is None  # single-genre data stays as it was
    tags = tag_matrix([("rock",), ("jazz", "rock"), ("electronic", "jazz", "rock")], GENRES)
    assert tags.tolist() == [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0]]
    assert tag_pair_counts(tags, GENRES) == {"rock+jazz": 2, "rock+electronic": 1, "jazz+electronic": 1}
    assert mix_name({"jazz": 0.5, "rock": 0.5}) == "jazz+rock"
    assert mix_name({"jazz": 0.7, "rock": 0.3}) == "jazz 70%+rock 30%"
    assert mix_weights({"jazz": 0.7, "rock": 0.3}, GENRES).tolist() == pytest.approx([0.3, 0.7, 0, 0])


# --- the networks --------------------------------------------------------------------------

@pytest.mark.parametrize("architecture", ["resnet", "dcgan"])
def test_networks_take_tag_weights_and_a_single_tag_is_its_genre(architecture):
    config = tiny_model(genres=GENRES, architecture=architecture)
    torch.manual_seed(0)
    G, D = build_generator(config).eval(), build_discriminator(config).eval()
    for table in (G.genre_embedding, D.genre_projection):  # away from their initial values
        torch.nn.init.normal_(table.weight if table is G.genre_embedding else table.parametrizations.weight.original)
    noise = torch.randn(4, config.latent_dim)
    index = torch.tensor([0, 1, 2, 3])
    one_hot = torch.eye(4)
    with torch.no_grad():
        torch.testing.assert_close(G(noise, one_hot), G(noise, index))
        torch.testing.assert_close(D(G(noise, index), one_hot)[0], D(G(noise, index), index)[0])
        # A mix embeds as the weighted mean of its genres' embeddings, whatever scale its weights have.
        mix = torch.tensor([[2.0, 2.0, 0, 0]])
        expected = (G.genre_embedding.weight[0] + G.genre_embedding.weight[1]) / 2
        torch.testing.assert_close(G.embed(mix, 1)[0], expected)
        weighted = 0.7 * G.genre_embedding.weight[0] + 0.3 * G.genre_embedding.weight[1]
        torch.testing.assert_close(G.embed(torch.tensor([0.7, 0.3, 0, 0]), 3), weighted.expand(3, -1))


# --- data ----------------------------------------------------------------------------------

def test_demo_tags_are_deterministic_and_follow_the_drawing(tagged_dir, monkeypatch):
    listed = (tagged_dir / "tags.csv").read_text().splitlines()
    assert listed == ["path,genres"] + [f"{g}/{i:05d}.png,{';'.join(t)}" for (g, i), t in TWO_TAGS.items()]
    # The tags name the genre the drawing really borrowed from: record what render_cover used.
    used = []
    borrowing = demo._borrowing
    monkeypatch.setattr(demo, "_borrowing", lambda rng: used.append(borrowing(rng)) or used[-1])
    for genre in TAGGED_GENRES:
        for index in range(12):
            used.clear()
            demo.render_cover(genre, demo._stream(0, demo.DEMO_GENRES.index(genre), index), 32)
            tags = demo.demo_cover_tags(genre, index, seed=0)
            assert tags == ((genre,) if used[0] is None or used[0][0] == genre else (genre, used[0][0]))
    # Over many covers about BORROW_PROBABILITY of them borrow, less those that borrow from their own genre.
    two = sum(len(demo.demo_cover_tags(g, i)) > 1 for g in demo.DEMO_GENRES for i in range(1000))
    assert 0.09 < two / 8000 < 0.12


def test_a_folder_s_tags_file_gives_covers_their_second_genre(tagged_dir):
    data = load_dataset(tagged_dir, 32, labelled=True)
    assert data.genres == sorted(TAGGED_GENRES)
    names = [f"{g}/{i:05d}.png" for g in data.genres for i in range(12)]
    tagged = {names[row]: tuple(np.array(data.genres)[data.tags[row]]) for row in np.flatnonzero(data.tags.sum(1) > 1)}
    assert tagged == {f"{g}/{i:05d}.png": tuple(sorted(t, key=data.genres.index)) for (g, i), t in TWO_TAGS.items()}
    assert data.tags[np.arange(len(data.labels)), data.labels].all()  # the main genre is always a tag
    assert data.description.tag_pairs == {"jazz+pop": 1, "metal+pop": 2, "classical+jazz": 1}


def test_a_manifest_s_genres_column_lists_tags_main_genre_first(tagged_dir, tmp_path):
    manifest = tmp_path / "tags.csv"
    manifest.write_text("path,genres\n"
                        f"{tagged_dir}/pop/00002.png,jazz; pop\n"
                        f"{tagged_dir}/jazz/00000.png,jazz\n"
                        f"{tagged_dir}/metal/00000.png,metal;jazz;pop\n")
    data = load_dataset(manifest, 32, labelled=True)
    assert data.genres == ["jazz", "metal", "pop"]
    assert data.labels.tolist() == [0, 0, 1]
    assert data.tags.astype(int).tolist() == [[1, 0, 1], [1, 0, 0], [1, 1, 1]]
    assert data.description.tag_pairs == {"jazz+pop": 2, "jazz+metal": 1, "metal+pop": 1}


@pytest.mark.parametrize("row, message", [
    ("pop/99999.png,pop;jazz", "tags.csv, line 2: 'pop/99999.png' is not an image in a genre folder of"),
    ("pop/00000.png,pop;polka", "tags.csv, line 2: genre 'polka' has no folder in"),
])
def test_a_bad_tags_file_is_one_line_naming_file_and_line(tagged_dir, tmp_path, row, message):
    import shutil

    folder = tmp_path / "labelled"
    shutil.copytree(tagged_dir, folder)
    (folder / "tags.csv").write_text(f"path,genres\n{row}\n")
    with pytest.raises(GanError) as error:
        load_dataset(folder, 32, labelled=True)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_packs_keep_tag_sets_and_old_packs_read_as_single_genre(tagged_dir, tmp_path):
    folder = load_dataset(tagged_dir, 32, labelled=True)
    info = write_pack(tagged_dir, tmp_path / "t.pack", 32, workers=1)
    packed = open_pack(tmp_path / "t.pack", 32, labelled=True)
    np.testing.assert_array_equal(packed.tags, folder.tags)
    assert info.tag_pairs == packed.description.tag_pairs == folder.description.tag_pairs
    assert open_pack(tmp_path / "t.pack", 32, labelled=False).tags is None
    np.save(tmp_path / "t.pack" / TAGS_FILE, np.zeros((3, 4), np.uint8))  # damaged
    with pytest.raises(GanError, match="tag sets of 0 and 1 that hold each cover's main genre; re-pack it"):
        open_pack(tmp_path / "t.pack", 32, labelled=True)
    # A single-genre pack (as every pack written before tags existed) has no tags file at all.
    single = tmp_path / "single"
    for genre in ("pop", "jazz"):
        (single / genre).mkdir(parents=True)
        Image.open(tagged_dir / genre / "00000.png").save(single / genre / "a.png")
    write_pack(single, tmp_path / "s.pack", 32, workers=1)
    assert not (tmp_path / "s.pack" / TAGS_FILE).exists()
    assert open_pack(tmp_path / "s.pack", 32, labelled=True).tags is None


# --- training -------------------------------------------------------------------------------

def test_real_covers_carry_their_tag_weights(tagged_dir):
    data = load_dataset(tagged_dir, 32, labelled=True)
    batches = RandomBatches(data.images, data.labels, 48, 0, torch.device("cpu"), tags=data.tags)
    index = batches._draw(torch.Generator().set_state(batches.rng.get_state()))
    _, weights = batches.next()
    expected = torch.from_numpy(data.tags[index.numpy()]).float()
    torch.testing.assert_close(weights, expected / expected.sum(1, keepdim=True))


def test_training_on_tag_sets_asks_fakes_for_the_data_s_tag_sets(tagged_dir, tmp_path):
    data = load_dataset(tagged_dir, 32, labelled=True)
    trainer = PhaseTrainer(RunFolder(tmp_path / "run"), tiny_model(genres=data.genres),
                           tiny_train(mode_seeking_weight=1.0, tag_sets=True), data, progress=False)
    drawn = trainer.draw_fake_genres(4000, torch.Generator().manual_seed(0), pairs=True)
    assert drawn.shape == (4000, 4) and torch.equal(drawn[1::2], drawn[0::2])
    as_sets = {tuple(row) for row in (drawn > 0).int().tolist()}
    assert as_sets == {tuple(row) for row in data.tags.astype(int).tolist()}
    two_tags = (drawn > 0).sum(1) == 2
    assert two_tags.float().mean().item() == pytest.approx(4 / 48, abs=0.02)  # as often as real covers
    assert torch.allclose(drawn[two_tags].max(1).values, torch.tensor(0.5))
    for _ in range(2):
        stats = trainer.train_step(*trainer.next_batch())
    assert all(torch.isfinite(v) for v in stats.values())
    assert 0 <= stats["genre_acc"].item() <= 1
    # Without --tag-sets (the default) the same data trains as main genres: indices, drawn uniformly.
    plain = PhaseTrainer(RunFolder(tmp_path / "plain"), tiny_model(genres=data.genres), tiny_train(), data,
                         progress=False)
    assert plain.fake_tag_sets is None and plain.next_batch()[1].dtype == torch.long
    assert plain.draw_fake_genres(8, torch.Generator().manual_seed(0)).dtype == torch.long


# --- generation ------------------------------------------------------------------------------

def test_the_generator_draws_mixes_in_every_written_form():
    from gan.sampling import load_generator

    generator = load_generator()  # the bundled demo checkpoint: single-genre, loads as before
    noise = generator.sample_noise(3, seed=1)
    embedding = generator.model.genre_embedding.weight
    halfway = ((embedding[generator.genre_index("jazz")] + embedding[generator.genre_index("electronic")]) / 2)
    by_embedding = generator.generate(noise, embedding=halfway.expand(3, -1))

    def same(a, b):  # up to float rounding: a weighted sum against a mean computed by hand
        np.testing.assert_allclose(a.astype(int), b.astype(int), atol=1)

    same(generator.generate(noise, "jazz+electronic"), by_embedding)
    same(generator.generate(noise, {"jazz": 1, "electronic": 1}), by_embedding)
    same(generator.generate(noise, "jazz:0.5,electronic:0.5"), by_embedding)
    # One genre or mix per image, side by side.
    mixed = generator.generate(noise, ["jazz", "jazz+electronic", generator.genre_index("rock")])
    same(mixed[0], generator.generate(noise[:1], "jazz")[0])
    same(mixed[1], by_embedding[1])
    same(mixed[2], generator.generate(noise[2:], "rock")[0])
    with pytest.raises(GanError, match="unknown genre 'polka' in the mix"):
        generator.generate(noise, {"jazz": 1, "polka": 1})


def test_cli_generate_writes_a_mix_to_a_folder_named_after_it(tmp_path, capsys):
    from gan.cli import main

    main(["generate", "--genre", "jazz:0.7,electronic:0.3", "--n", "2", "--out", str(tmp_path)])
    assert sorted(p.name for p in (tmp_path / "jazz 70%+electronic 30%").iterdir()) == ["00000.png", "00001.png"]
    with pytest.raises(SystemExit) as exit_code:
        main(["generate", "--genre", "jazz+polka", "--n", "2", "--out", str(tmp_path / "x")])
    assert exit_code.value.code == 2
    assert capsys.readouterr().err.strip().endswith(
        "unknown genre 'polka' in the mix 'jazz+polka'; this model knows: classical, electronic, folk, hip-hop, jazz, "
        "metal, pop, rock")


# --- measuring pairs -------------------------------------------------------------------------

def test_tags_found_needs_exactly_the_cover_s_tags_on_top():
    from gan.eval.judge import tags_found

    ranked = np.tile([4.0, 3.0, 2.0, 1.0], (5, 1))  # the judge rates genres 0, 1, 2, 3 in that order
    tags = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0], [1, 1, 1, 0]])
    assert tags_found(ranked, tags).tolist() == [True, False, True, False, True]
    assert tags_found(ranked[:, ::-1], tags).tolist() == [False] * 5  # the same tags ranked last


def test_a_judge_of_tag_sets_is_cached_apart_from_one_of_genres():
    from gan.eval.judge import JudgeConfig, fingerprint

    images = np.zeros((8, 16, 16, 3), np.uint8)
    labels = np.array([0, 1] * 4)
    weights = np.eye(2, dtype=np.float32)[labels]
    config = JudgeConfig(resolution=16, genres=["a", "b"])
    assert fingerprint(images, labels, config) != fingerprint(images, weights, config)
    weights[0, 1] = 1  # one cover of both
    assert fingerprint(images, np.eye(2, dtype=np.float32)[labels], config) != fingerprint(images, weights, config)


def test_pair_quality_scores_each_pair_of_the_data(tagged_dir, tmp_path):
    from gan.data.demo import demo_covers, demo_pair_covers, demo_tag_weights
    from gan.eval.judge import JudgeConfig, train_judge
    from gan.eval.pairs import data_pairs, pair_quality
    from gan.sampling import load_generator
    from gan.train import PhasePlan, TrainingPlan, run_training

    run = tmp_path / "run"
    genres = sorted(TAGGED_GENRES)
    run_training(run, TrainingPlan(model=tiny_model(), finetune=PhasePlan(tiny_train(steps=2), str(tagged_dir))),
                 progress=False)
    generator = load_generator(run)
    assert data_pairs(generator) == {("jazz", "pop"): 1, ("metal", "pop"): 2, ("classical", "jazz"): 1}
    images, _ = demo_covers(genres, 8, 32, seed=3)
    judge = train_judge(images, demo_tag_weights(genres, 8, seed=3), JudgeConfig(resolution=32, genres=genres, steps=4))
    pairs = {("jazz", "pop"): 1, ("metal", "pop"): 2}
    reference, floor = ({pair: demo_pair_covers(pair, 6, 32, seed) for pair in pairs} for seed in (2, 4))
    report = pair_quality(generator, judge, reference, floor, pairs, n=6, msssim_pairs=10)
    assert [s.pair for s in report.scores] == ["jazz+pop", "metal+pop"]
    for score in report.scores:
        assert score.n == 6 and not score.counted and 0 <= score.top_two <= 1 and 0 <= score.real_top_two <= 1
        assert np.isfinite(score.ratio) and 0 < score.msssim_real <= 1
    assert report.failures() == []  # the targets count pairs with at least 50 covers in the data


def test_evaluate_pairs_of_a_single_genre_checkpoint_is_one_line(tmp_path, capsys):
    from gan.cli import main

    write_checkpoint(tmp_path / "single", ["jazz", "pop"])  # its data recorded no covers of two genres
    with pytest.raises(SystemExit):
        main(["evaluate", "pairs", "--checkpoint", str(tmp_path / "single"), "--out", str(tmp_path / "out")])
    assert capsys.readouterr().err.strip() == ("error: no tag pairs to measure: the checkpoint's training data has "
                                               "no covers of two genres")


def test_the_report_of_a_multi_tag_run_shows_its_pairs(tagged_dir, tmp_path, monkeypatch):
    from gan.eval.report import write_report
    from gan.sampling import load_generator
    from gan.train import PhasePlan, TrainingPlan, run_training

    for name, value in (("DEMO_JUDGE_SINGLES_PER_GENRE", 8), ("DEMO_JUDGE_COVERS_PER_PAIR", 6),
                        ("DEMO_JUDGE_STEPS", 5)):
        monkeypatch.setattr(f"gan.eval.pairs.{name}", value)
    monkeypatch.setattr("gan.eval.realism.DEMO_JUDGE_COVERS_PER_GENRE", 12)
    monkeypatch.setattr("gan.eval.realism.DEMO_JUDGE_STEPS", 5)
    run_training(tmp_path / "run", TrainingPlan(model=tiny_model(), finetune=PhasePlan(tiny_train(steps=2),
                                                                                       str(tagged_dir))),
                 progress=False)
    page = write_report(load_generator(tmp_path / "run"), tmp_path / "report", n=6, pairs=10).read_text()
    assert "Genre pairs: covers asked for the equal mix of two genres" in page
    assert page.index("<td>classical+jazz</td>") < page.index("<td>jazz+pop</td>") < page.index("<td>metal+pop</td>")
    assert (tmp_path / "report" / "pairs.csv").is_file() and (tmp_path / "report" / "pairs.html").is_file()


def test_pairs_are_measured_against_real_covers_with_tag_sets(tagged_dir, tmp_path, capsys, monkeypatch):
    from gan.cli import main
    from gan.eval.report import write_report
    from gan.sampling import load_generator
    from gan.train import PhasePlan, TrainingPlan, run_training

    run_training(tmp_path / "run", TrainingPlan(model=tiny_model(), finetune=PhasePlan(tiny_train(steps=2),
                                                                                       str(tagged_dir))),
                 progress=False)
    rows = [f"{tagged_dir}/{g}/{i:05d}.png,{g}" for g in TAGGED_GENRES for i in range(12)]
    for tags, genre in (("pop;jazz", "pop"), ("metal;pop", "metal"), ("classical;jazz", "classical")):
        rows += [f"{tagged_dir}/{genre}/{i:05d}.png,{tags}" for i in range(7)]
    (tmp_path / "real.csv").write_text("path,genres\n" + "\n".join(rows) + "\n")
    main(["evaluate", "pairs", "--checkpoint", str(tmp_path / "run"), "--real", str(tmp_path / "real.csv"),
          "--n", "4", "--out", str(tmp_path / "out")])
    report = json.loads((tmp_path / "out" / "pairs.json").read_text())
    assert [r["pair"] for r in report["scores"]] == ["classical+jazz", "jazz+pop", "metal+pop"]
    assert all(r["n"] == 2 for r in report["scores"])  # 7 covers a pair: a third each for reference and floor
    assert report["settings"]["real"].startswith("real covers given")
    (tmp_path / "few.csv").write_text("path,genres\n" + "\n".join(rows[:-3]) + "\n")
    with pytest.raises(SystemExit):
        main(["evaluate", "pairs", "--checkpoint", str(tmp_path / "run"), "--real", str(tmp_path / "few.csv"),
              "--out", str(tmp_path / "out2")])
    assert "pair classical+jazz: 4 real covers carry exactly these two genres; at least 6" in capsys.readouterr().err

    # The report measures pairs against the real covers it was given, or says why it could not.
    monkeypatch.setattr("gan.eval.realism.DEMO_JUDGE_COVERS_PER_GENRE", 12)
    monkeypatch.setattr("gan.eval.realism.DEMO_JUDGE_STEPS", 5)
    generator = load_generator(tmp_path / "run")
    page = write_report(generator, tmp_path / "report", n=4, pairs=10, real_source=tmp_path / "real.csv").read_text()
    assert "equal mix of two genres against real covers of both (real covers given" in page
    page = write_report(generator, tmp_path / "report2", n=4, pairs=10, real_source=tmp_path / "few.csv").read_text()
    assert "Not measured: pair classical+jazz: 4 real covers carry exactly these two genres" in page
