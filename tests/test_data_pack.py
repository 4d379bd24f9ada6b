"""Archives (the form OMACIR ships in) and packed datasets."""

import io
import json
import logging
import shutil
import tarfile
import zipfile

import numpy as np
import pytest
import torch

from gan.cli import main
from gan.data.batches import RandomBatches
from gan.data.folders import load_dataset
from gan.data.pack import IMAGES_FILE, INFO_FILE, open_pack, write_pack
from gan.errors import GanError


def _tar(folder, out, mode="w:gz"):
    with tarfile.open(out, mode) as tf:
        tf.add(folder, arcname=".")
    return out


def test_archives_load_like_the_folder(tmp_path, demo_dir):
    folder = load_dataset(demo_dir / "unlabelled", 32, labelled=False)
    tgz = _tar(demo_dir / "unlabelled", tmp_path / "covers.tar.gz")
    from_tgz = load_dataset(tgz, 32, labelled=False)
    assert from_tgz.description.kind == "archive"
    np.testing.assert_array_equal(np.sort(from_tgz.images.reshape(len(from_tgz), -1), 0),
                                  np.sort(folder.images.reshape(len(folder), -1), 0))
    zipped = tmp_path / "covers.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        for i, path in enumerate(sorted((demo_dir / "unlabelled").rglob("*.png"))):
            zf.write(path, f"part{i % 2}/{path.name}")
    assert len(load_dataset(zipped, 32, labelled=False)) == len(folder)


def test_folder_of_archive_parts_and_labelled_archive(tmp_path, demo_dir):
    parts = tmp_path / "omacir"
    parts.mkdir()
    files = sorted((demo_dir / "unlabelled").rglob("*.png"))
    for part in range(3):
        with tarfile.open(parts / f"covers-{part:03d}.tar", "w") as tf:
            for path in files[part::3]:
                tf.add(path, arcname=f"{part:03d}/{path.name}")
    assert len(load_dataset(parts, 32, labelled=False)) == len(files)
    labelled = load_dataset(_tar(demo_dir / "labelled", tmp_path / "labelled.tar"), 32, labelled=True)
    assert labelled.genres == sorted(p.name for p in (demo_dir / "labelled").iterdir() if p.is_dir())
    assert set(labelled.description.images_per_genre.values()) == {12}


def test_truncated_archive_is_one_clear_error(tmp_path, demo_dir):
    tgz = _tar(demo_dir / "unlabelled", tmp_path / "covers.tar.gz")
    data = tgz.read_bytes()
    tgz.write_bytes(data[: len(data) // 2])
    with pytest.raises(GanError, match="covers.tar.gz: cannot read the archive"):
        load_dataset(tgz, 32, labelled=False)


def test_pack_round_trip_labelled(tmp_path, demo_dir):
    info = write_pack(demo_dir / "labelled", tmp_path / "demo.pack", 32, labelled=True, workers=2)
    folder = load_dataset(demo_dir / "labelled", 32, labelled=True)
    packed = load_dataset(tmp_path / "demo.pack", 32, labelled=True)
    assert isinstance(packed.images, np.memmap)
    assert info.count == len(folder) and packed.genres == folder.genres
    np.testing.assert_array_equal(np.asarray(packed.images), folder.images)
    np.testing.assert_array_equal(packed.labels, folder.labels)
    names = (tmp_path / "demo.pack" / "names.txt").read_text().splitlines()
    assert len(names) == info.count and names[0].endswith(".png")
    # The same pack feeds pre-training (labels unused).
    assert load_dataset(tmp_path / "demo.pack", 32, labelled=False).labels is None


def test_pack_skips_corrupt_images_and_names_them(tmp_path, demo_dir):
    src = tmp_path / "src"
    shutil.copytree(demo_dir / "unlabelled", src)
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    info = write_pack(src, tmp_path / "u.pack", 32)
    assert info.skipped == 1 and info.skipped_files[0].endswith("broken.jpg")
    assert info.count == len(list((demo_dir / "unlabelled").rglob("*.png")))


def test_pack_errors_are_clear(tmp_path, demo_dir):
    pack = tmp_path / "u.pack"
    write_pack(demo_dir / "unlabelled", pack, 32)
    with pytest.raises(GanError, match="already exists; pass --overwrite"):
        write_pack(demo_dir / "unlabelled", pack, 32)
    with pytest.raises(GanError, match="packed at 32 px but the model is 64 px"):
        open_pack(pack, 64, labelled=False)
    with pytest.raises(GanError, match="no genre labels"):
        open_pack(pack, 32, labelled=True)
    info = json.loads((pack / INFO_FILE).read_text())
    (pack / INFO_FILE).write_text(json.dumps({**info, "version": 99}))
    with pytest.raises(GanError, match="pack format version 99"):
        open_pack(pack, 32, labelled=False)
    (pack / INFO_FILE).write_text(json.dumps(info))
    with open(pack / IMAGES_FILE, "r+b") as f:
        f.truncate(100)
    with pytest.raises(GanError, match="truncated or damaged"):
        open_pack(pack, 32, labelled=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(GanError, match="no images found"):
        write_pack(tmp_path / "empty", tmp_path / "e.pack", 32)
    assert not (tmp_path / "e.pack").exists()
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


def test_overwrite_replaces_a_pack_whole(tmp_path, demo_dir):
    pack = tmp_path / "u.pack"
    write_pack(demo_dir / "unlabelled", pack, 32)
    write_pack(demo_dir / "unlabelled", pack, 16, overwrite=True)
    assert json.loads((pack / INFO_FILE).read_text())["resolution"] == 16


def test_cli_pack_and_train_from_pack(tmp_path, demo_dir, capsys):
    main(["data", "pack", str(demo_dir / "labelled"), "--size", "32", "--labelled", "--out", str(tmp_path / "l.pack")])
    assert "packed 36 images" in capsys.readouterr().out
    main(["train", "--data", str(tmp_path / "l.pack"), "--steps", "2", "--resolution", "32", "--width", "8",
          "--latent-dim", "16", "--batch-size", "8", "--device", "cpu", "--precision", "fp32", "--no-progress",
          "--out", str(tmp_path / "run")])
    config = json.loads((tmp_path / "run" / "checkpoints" / "finetune-0000002" / "config.json").read_text())
    assert config["data"]["kind"] == "pack"


def test_cli_pack_bad_input_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "pack", str(tmp_path / "missing"), "--size", "64", "--out", str(tmp_path / "x.pack")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


def test_random_batches_from_a_pack_are_deterministic_and_sharded(tmp_path, demo_dir):
    write_pack(demo_dir / "labelled", tmp_path / "l.pack", 32, labelled=True)
    data = open_pack(tmp_path / "l.pack", 32, labelled=True)
    whole = RandomBatches(data.images, data.labels, 8, seed=3, device=torch.device("cpu"))
    halves = [RandomBatches(data.images, data.labels, 8, seed=3, device=torch.device("cpu"), rank=r, world_size=2)
              for r in range(2)]
    for _ in range(3):
        real, labels = whole.next()
        parts = [h.next() for h in halves]
        torch.testing.assert_close(torch.cat([p[0] for p in parts]), real)
        assert torch.equal(torch.cat([p[1] for p in parts]), labels)
    assert real.min() >= -1 and real.max() <= 1 and real.dtype == torch.float32


def test_genre_groups_hold_one_genre_each_and_keep_the_data_s_genre_mix():
    """Batches drawn in runs of 4 covers of one genre (for the discriminator's minibatch statistics):
    every run is one genre, genres come as often as in the data, and ranks split the same batches."""
    labels = np.repeat(np.arange(3), [10, 30, 60])
    images = np.arange(100, dtype=np.uint8)[:, None, None, None].repeat(3, 1).repeat(2, 2).repeat(2, 3)
    cpu = torch.device("cpu")
    whole = RandomBatches(images, labels, 16, seed=3, device=cpu, group_size=4)
    halves = [RandomBatches(images, labels, 16, seed=3, device=cpu, rank=r, world_size=2, group_size=4)
              for r in range(2)]
    for _ in range(3):
        genres = whole.next()[1]
        assert torch.equal(torch.cat([h.next()[1] for h in halves]), genres)
    seen = np.zeros(3)
    for _ in range(400):
        real, genres = whole.next()
        rows = ((real[:, 0, 0, 0] + 1) * 127.5).round().long()  # each image holds its row number
        assert torch.equal(torch.from_numpy(labels)[rows], genres)  # the labels are those of the covers drawn
        assert (genres.view(-1, 4) == genres.view(-1, 4)[:, :1]).all()
        seen += np.bincount(genres.numpy(), minlength=3)
    assert np.allclose(seen / seen.sum(), [0.1, 0.3, 0.6], atol=0.03)
    ungrouped = RandomBatches(images, None, 16, seed=3, device=cpu, group_size=4)  # unlabelled: nothing to group
    assert ungrouped.group_size == 1
    with pytest.raises(GanError, match="multiple of the genre groups' size 4"):
        RandomBatches(images, labels, 6, seed=3, device=cpu, group_size=4)


def test_prefetched_batches_are_the_batches_and_the_stream_stays_resumable(tmp_path, demo_dir):
    """Prefetching (on by default for a pack on a GPU) reads one batch ahead; what it hands out, and
    the random stream a checkpoint saves, are those of plain batches, also after the stream is set
    back as a resume does."""
    write_pack(demo_dir / "labelled", tmp_path / "l.pack", 32, labelled=True)
    data = open_pack(tmp_path / "l.pack", 32, labelled=True)
    cpu = torch.device("cpu")
    plain = RandomBatches(data.images, data.labels, 8, seed=3, device=cpu, prefetch=False)
    ahead = RandomBatches(data.images, data.labels, 8, seed=3, device=cpu, prefetch=True)
    assert plain.prefetcher is None and ahead.prefetcher is not None
    saved = None
    for step in range(5):
        if step == 2:
            saved = plain.rng.get_state()
            assert torch.equal(ahead.rng.get_state(), saved)
        for _ in range(1 + (step == 3)):  # at step 3 the stream runs on, then is set back below
            expected, got = plain.next(), ahead.next()
            assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
        assert torch.equal(ahead.rng.get_state(), plain.rng.get_state())
    plain.rng.set_state(saved)
    ahead.rng.set_state(saved)  # the prefetched batch no longer follows: it is not handed out
    for _ in range(3):
        expected, got = plain.next(), ahead.next()
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
    ahead.close()
    assert ahead.prefetcher is None
    torch.testing.assert_close(ahead.next()[0], plain.next()[0])  # closed: it goes on without the thread


def test_decoding_streams_a_chunk_at_a_time(demo_dir):
    """Packing never pulls more than two chunks ahead of what it has written, whatever the size."""
    from gan.data.folders import DECODE_CHUNK, decode_chunks
    from gan.data.sources import ImageSource, SourceImage

    png = next((demo_dir / "unlabelled").rglob("*.png")).read_bytes()
    pulled = []

    class Endless(ImageSource):
        def items(self):
            for i in range(10 * DECODE_CHUNK):
                pulled.append(i)
                yield SourceImage(f"member-{i}.png", None, data=png)

    chunks = decode_chunks(Endless(demo_dir, "archive", [], None), 16, workers=2)
    first = next(chunks)
    assert first.images.shape == (DECODE_CHUNK, 3, 16, 16)
    assert len(pulled) <= 2 * DECODE_CHUNK
    chunks.close()


@pytest.mark.parametrize("member, genre", [("../../evil.png", ".."), ("/abs/evil.png", "/")])
def test_archive_member_paths_never_become_unsafe_genres(tmp_path, demo_dir, member, genre):
    png = next((demo_dir / "unlabelled").rglob("*.png"))
    archive = tmp_path / "covers.tar"
    with tarfile.open(archive, "w") as tf:
        tf.add(png, arcname="rock/a.png")
        info = tf.gettarinfo(png, arcname="x")
        info.name = member  # tarfile.add would strip the leading "/"; a hostile tar need not
        with open(png, "rb") as f:
            tf.addfile(info, f)
    with pytest.raises(GanError) as error:
        load_dataset(archive, 32, labelled=True)
    assert str(error.value).startswith(f"{archive}: member {member!r}: genre {genre!r} cannot be a folder name")
    assert len(load_dataset(archive, 32, labelled=False)) == 2  # unlabelled, member paths are only names


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_oversized_archive_members_are_skipped_unread(tmp_path, demo_dir, monkeypatch, caplog, kind):
    """A member over the limit is reported like an unreadable image, and never read whole."""
    from gan.data import sources

    monkeypatch.setattr(sources, "MAX_MEMBER_BYTES", 4096)
    pngs = sorted((demo_dir / "unlabelled").rglob("*.png"))[:3]
    big = b"\x89PNG" + bytes(50_000)  # compresses to almost nothing
    archive = tmp_path / f"covers.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for png in pngs:
                zf.write(png, png.name)
            zf.writestr("huge.png", big)
    else:
        with tarfile.open(archive, "w") as tf:
            for png in pngs:
                tf.add(png, arcname=png.name)
            info = tarfile.TarInfo("huge.png")
            info.size = len(big)
            tf.addfile(info, io.BytesIO(big))
    reads = []
    original = sources._member

    def counting(archive, name, genre, declared_size, stream):
        class Counted:
            def read(self, n=-1):
                data = stream.read(n)
                reads.append((n, len(data)))
                return data
        return original(archive, name, genre, declared_size, Counted())

    monkeypatch.setattr(sources, "_member", counting)
    with caplog.at_level(logging.WARNING):
        data = load_dataset(archive, 32, labelled=False)
    assert len(data) == 3 and data.description.num_skipped == 1 and data.skipped == [f"{archive}:huge.png"]
    assert f"{archive}:huge.png: larger than" in caplog.text
    assert all(0 < n <= 4097 and got <= 4097 for n, got in reads)  # bounded reads only


def test_a_folder_of_genre_folders_packs_labelled_unless_told_otherwise(tmp_path, demo_dir, capsys):
    main(["data", "pack", str(demo_dir / "labelled"), "--size", "32", "--out", str(tmp_path / "auto.pack")])
    out = capsys.readouterr().out
    assert "3 genres (classical, pop, rock) from its sub-folders" in out
    assert len(load_dataset(tmp_path / "auto.pack", 32, labelled=True).genres) == 3
    main(["data", "pack", str(demo_dir / "labelled"), "--size", "32", "--unlabelled",
          "--out", str(tmp_path / "u.pack")])
    assert "unlabelled" in capsys.readouterr().out
    with pytest.raises(GanError, match="no genre labels"):
        load_dataset(tmp_path / "u.pack", 32, labelled=True)
    assert write_pack(demo_dir / "unlabelled", tmp_path / "flat.pack", 32).genres == []  # loose images


def test_a_genre_whose_images_all_fail_to_decode_is_refused(tmp_path, demo_dir):
    src = tmp_path / "src"
    shutil.copytree(demo_dir / "labelled", src)
    (src / "polka").mkdir()
    (src / "polka" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(GanError, match=r"no readable images for genre\(s\) \['polka'\]"):
        write_pack(src, tmp_path / "p.pack", 32)
    assert not (tmp_path / "p.pack").exists()


def _labelled_pack(tmp_path, demo_dir):
    pack = tmp_path / "l.pack"
    write_pack(demo_dir / "labelled", pack, 32, labelled=True)
    return pack, json.loads((pack / INFO_FILE).read_text())


@pytest.mark.parametrize("key, value, message", [
    ("count", "128", "count must be a whole number, got '128'"),
    ("resolution", "32", "resolution must be a whole number, got '32'"),
    ("version", "1", "version must be a whole number, got '1'"),
    ("genres", ["../x", "pop", "rock"], "genre '../x' cannot be a folder name"),
    ("genres", None, "genres must be a list, got None"),
    ("count", -5, "count must be at least 1, got -5"),
    ("resolution", 10**9, "resolution must be between 8 and 1024"),
])
def test_pack_info_of_the_wrong_type_is_one_line(tmp_path, demo_dir, key, value, message):
    pack, info = _labelled_pack(tmp_path, demo_dir)
    (pack / INFO_FILE).write_text(json.dumps({**info, key: value}))
    with pytest.raises(GanError) as error:
        load_dataset(pack, 32, labelled=True)
    assert message in str(error.value) and str(error.value).startswith(str(pack))


@pytest.mark.parametrize("labels, message", [
    (np.zeros(36, dtype=np.float64), "float64 labels of shape (36,)"),
    (np.zeros((36, 2), dtype=np.int64), "int64 labels of shape (36, 2)"),
    (np.full(36, 3, dtype=np.int64), "labels from 3 to 3 where pack.json has 3 genres"),
])
def test_pack_labels_are_checked_at_open(tmp_path, demo_dir, labels, message):
    pack, _ = _labelled_pack(tmp_path, demo_dir)
    np.save(pack / "labels.npy", labels)
    with pytest.raises(GanError) as error:
        open_pack(pack, 32, labelled=True)
    assert message in str(error.value) and "\n" not in str(error.value)
