"""`python -m gan SUBCOMMAND`: demo-data, train, sweep, generate, evaluate, export.

A user mistake prints one line (`error: ...`) and exits with status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from gan.config import (
    COMPILE_MODES,
    GENRE_CLASSIFIERS,
    R1_EVERY,
    RESNET_ONLY,
    UPSAMPLING,
    ModelConfig,
    TrainConfig,
    resnet_off,
)
from gan.errors import GanError

log = logging.getLogger("gan")

TRAIN_HELP = {
    "batch_size": "images per step",
    "lr_g": "generator learning rate (Adam)",
    "lr_d": "discriminator learning rate (Adam)",
    "lr_decay_from": "fraction of the steps after which both learning rates fall linearly to 0 at the last "
                     "step; 1 = constant",
    "beta1": "Adam beta1",
    "beta2": "Adam beta2",
    "genre_loss_weight": "weight of the genre (auxiliary classifier) loss",
    "ema_decay": "decay of the generator's exponential moving average; 0 turns it off",
    "ema_rampup": "the EMA averages about this fraction of the steps so far (1/9: the last 333 of 3,000) until "
                  "--ema-decay caps it; 0 = --ema-decay from the first step",
    "seed": "seed for weights, data order and noise",
    "device": "auto, cpu, cuda or cuda:N",
    "precision": "auto (bf16 where the hardware has it), bf16 or fp32",
    "log_every": "steps between rows of metrics.jsonl",
    "sample_every": "steps between sample grids",
    "checkpoint_every": "steps between checkpoints",
    "keep_checkpoints": "checkpoints kept per phase (the final one is always kept)",
    "sample_rows": "noise vectors (rows) in each sample grid",
    "mode_seeking_weight": "weight of the mode-seeking term that rewards G for different covers from different "
                           "noise within a genre (MSGAN; 0 = off)",
    "mode_seeking_scale": "the mode-seeking term compares fakes averaged down to this many pixels a side, so "
                          "per-pixel grain does not count as variety; 0 = every pixel",
    "r1_gamma": f"weight of the zero-centred gradient penalty on real covers (R1), applied every {R1_EVERY} "
                "steps; 0 = off",
    "d_steps": "discriminator updates per generator update, each on a batch of its own",
    "lecam_weight": "weight of the LeCam regulariser, which pulls D's scores of real covers and of fakes towards "
                    "moving averages of each other's; 0 = off",
    "augment": "augmentation of what D sees, real and fake: none, or translation,cutout (DiffAugment)",
    "eval_every": "fine-tuning steps between quality evaluations (realism, fidelity, diversity of a fixed sample, "
                  "logged to metrics.jsonl; the best is kept as checkpoints/best); 0 = off",
    "eval_covers": "covers per genre in each quality evaluation",
}


BEST_HELP = ("with a run folder: its best checkpoint by the quality tracked in training (checkpoints/best), "
             "not its newest")


def _add_train_flags(parser: argparse.ArgumentParser) -> None:
    defaults = TrainConfig()
    model = ModelConfig()
    parser.add_argument("--data", help="fine-tuning data: a folder with one sub-folder per genre, a CSV "
                                       "manifest (path,genre), archive(s), or a pack (python -m gan data pack)")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"fine-tuning steps (default {defaults.steps}); with --resume, train a finished "
                             "or stopped run on to this step")
    parser.add_argument("--pretrain-data", help="unlabelled images for unconditional pre-training: a folder, "
                                                "archive(s) such as OMACIR's, or a pack")
    parser.add_argument("--pretrain-steps", type=int, default=0, help="pre-training steps (default %(default)s)")
    parser.add_argument("--init-from", help="start fine-tuning from this checkpoint or run folder "
                                             "(an exported one seeds the generator alone)")
    parser.add_argument("--out", required=True, help="run folder, e.g. runs/NAME")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--resolution", type=int, default=model.resolution, help="32, 64 or 128 (default %(default)s)")
    parser.add_argument("--latent-dim", type=int, default=model.latent_dim, help="noise size (default %(default)s)")
    parser.add_argument("--width", type=int, default=model.width, help="base channel count (default %(default)s)")
    parser.add_argument("--genre-embedding-dim", type=int, default=model.genre_embedding_dim,
                        help="size of the learned genre embedding (default %(default)s)")
    parser.add_argument("--architecture", choices=("resnet", "dcgan"), default=model.architecture,
                        help="network family (see gan/models; default %(default)s)")
    parser.add_argument("--pixel-noise", action=argparse.BooleanOptionalAction, default=model.pixel_noise,
                        help="per-pixel grain in the ResNet generator, its strength learned per genre "
                             "(default %(default)s)")
    # None: the architecture decides (on for resnet, where the recipe has it; dcgan has no blocks for it).
    parser.add_argument("--coordinate-channels", action=argparse.BooleanOptionalAction, default=None,
                        help="each pixel's x and y beside the features of every ResNet generator block "
                             f"(CoordConv; default {model.coordinate_channels} for resnet, False for dcgan)")
    parser.add_argument("--coordinate-frequencies", type=int, default=model.coordinate_frequencies,
                        help="octaves of sines and cosines of each pixel's x and y, in a frame the noise turns "
                             "and shifts, beside the features of every ResNet generator block (1, 2, 4, ... "
                             "periods across the cover; 0: none; default %(default)s)")
    parser.add_argument("--coordinate-rings", action=argparse.BooleanOptionalAction, default=model.coordinate_rings,
                        help="with --coordinate-frequencies, waves of each pixel's distance from a centre the noise "
                             "places too: rings about a point (default %(default)s)")
    parser.add_argument("--coordinate-genre-gains", action=argparse.BooleanOptionalAction,
                        default=model.coordinate_genre_gains,
                        help="with --coordinate-frequencies, a gain per genre on each wave (starting at 1): a "
                             "genre whose covers have no stripes can turn them down (default %(default)s)")
    parser.add_argument("--noise-in-norms", action=argparse.BooleanOptionalAction, default=model.noise_in_norms,
                        help="each ResNet generator batch norm's gain and shift read the cover's noise as well as "
                             "its genre (BigGAN's skip-z): the noise sets colours and textures at every scale "
                             "(default %(default)s)")
    parser.add_argument("--upsample", choices=UPSAMPLING, default=None,
                        help="how each ResNet generator block doubles its features: nearest (copies, a staircase "
                             "the convolutions must smooth) or bilinear (interpolates; default "
                             f"{model.upsample} for resnet, nearest for dcgan)")
    parser.add_argument("--generator-spectral-norm", action=argparse.BooleanOptionalAction,
                        default=model.generator_spectral_norm,
                        help="spectral norm on the ResNet generator's layers as well as the discriminator's "
                             "(SAGAN, BigGAN; default %(default)s)")
    parser.add_argument("--generator-min-channels", type=int, default=model.generator_min_channels,
                        help="the fewest channels of any ResNet generator block: widens the last blocks, which "
                             "draw the thin lines, and leaves the discriminator as it is (0: none; "
                             "default %(default)s)")
    parser.add_argument("--discriminator-min-channels", type=int, default=None,
                        help="the fewest channels of any ResNet discriminator block: widens its first blocks, "
                             "which look at the cover's grain and edges, and leaves the generator as it is "
                             f"(0: none; default {model.discriminator_min_channels} for resnet, 0 for dcgan)")
    parser.add_argument("--projection", action=argparse.BooleanOptionalAction, default=model.projection,
                        help="genre-aware realness in the discriminator (projection discriminator; "
                             "default %(default)s)")
    parser.add_argument("--genre-classifier", choices=GENRE_CLASSIFIERS, default=model.genre_classifier,
                        help="the discriminator's genre classifier: AC-GAN's softmax, or ReACGAN's contrastive "
                             "data-to-data cross-entropy (see gan/models/genre_heads.py; default %(default)s)")
    for name, help_text in TRAIN_HELP.items():
        default = getattr(defaults, name)
        parser.add_argument("--" + name.replace("_", "-"), type=type(default), default=default,
                            help=f"{help_text} (default %(default)s)")
    parser.add_argument("--mode-seeking-cap", action=argparse.BooleanOptionalAction, default=defaults.mode_seeking_cap,
                        help="stop the mode-seeking term once two fakes differ as much as two real covers of "
                             "their genre do on average (default %(default)s)")
    parser.add_argument("--genre-groups", action=argparse.BooleanOptionalAction, default=defaults.genre_groups,
                        help="draw real covers and fakes in groups of one genre, so that the discriminator's "
                             "minibatch statistics compare within-genre variety (default %(default)s)")
    parser.add_argument("--tag-sets", action=argparse.BooleanOptionalAction, default=defaults.tag_sets,
                        help="train covers of several genres (a manifest's genres column, a folder's tags.csv) on "
                             "their tag sets; off, each trains as its main genre (default %(default)s)")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=defaults.channels_last,
                        help="channels-last memory format (default %(default)s)")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=defaults.compile,
                        help="torch.compile the networks (default %(default)s)")
    parser.add_argument("--compile-mode", choices=COMPILE_MODES, default=defaults.compile_mode,
                        help="torch.compile's mode with --compile: reduce-overhead replays each step as CUDA "
                             "graphs on a GPU (a CPU has none: it compiles as default) (default %(default)s)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bar (default: on a terminal); without it, a log line every --log-every steps")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gan", description="CoverGAN Studio: album covers by genre")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo-data", help="write procedural demo covers (labelled by genre, and unlabelled)")
    demo.add_argument("--out", required=True, help="output folder")
    demo.add_argument("--per-genre", type=int, default=1000, help="labelled covers per genre (default %(default)s)")
    demo.add_argument("--unlabelled", type=int, default=5000, help="unlabelled covers (default %(default)s)")
    demo.add_argument("--size", type=int, default=64, help="side in pixels (default %(default)s)")
    demo.add_argument("--seed", type=int, default=0, help="seed (default %(default)s)")
    demo.add_argument("--genres", help="comma-separated subset of the demo genres (default: all)")

    train = sub.add_parser("train", help="pre-train and/or fine-tune an AC-GAN")
    _add_train_flags(train)

    generate = sub.add_parser("generate", help="write generated covers as PNG files")
    generate.add_argument("--checkpoint", help="checkpoint or run folder (default: checkpoints/demo)")
    generate.add_argument("--best", action="store_true", help=BEST_HELP)
    generate.add_argument("--genre", default="all",
                          help="a genre, a mix of genres ('jazz+electronic', or weighted 'jazz:0.7,electronic:0.3'; "
                               "written to OUT/<genre>+<genre>/), or 'all' (default)")
    generate.add_argument("--n", type=int, default=16, help="images per genre (default %(default)s)")
    generate.add_argument("--seed", type=int, default=0, help="noise seed (default %(default)s)")
    generate.add_argument("--out", required=True, help="output folder: OUT/<genre>/<index>.png")
    generate.add_argument("--device", default="cpu", help="cpu or cuda (default %(default)s)")

    sweep = sub.add_parser("sweep", help="one training run per value of a parameter, the rest fixed")
    _add_train_flags(sweep)
    sweep.add_argument("--param", required=True, help="parameter to vary, e.g. latent_dim, lr_g or pretrain")
    sweep.add_argument("--values", required=True, help="comma-separated values, e.g. 32,64,128 or on,off")

    evaluate = sub.add_parser("evaluate", help="diversity, colour statistics, memorisation, run comparison")
    kinds = evaluate.add_subparsers(dest="evaluation", required=True)
    for name, help_text in (("diversity", "within-genre MS-SSIM, generated against real"),
                            ("colour", "per-genre colour statistics"),
                            ("nearest", "nearest training covers of generated ones (memorisation)"),
                            ("realism", "Frechet distance and KID to real covers in a judge CNN's features, over "
                                        "the same between two draws of real covers"),
                            ("report", "all of the above in one HTML page")):
        kind = kinds.add_parser(name, help=help_text)
        kind.add_argument("--checkpoint", help="checkpoint or run folder (default: checkpoints/demo)")
        kind.add_argument("--best", action="store_true", help=BEST_HELP)
        kind.add_argument("--real" if name != "nearest" else "--data", required=name == "nearest",
                          help="labelled folder or CSV of real covers" + (
                              " (the training data)" if name == "nearest" else
                              " (default for realism: held-out demo covers, for a checkpoint trained on them)"
                              if name == "realism" else " (optional baseline)"))
        kind.add_argument("--n", type=int, default=1000 if name == "diversity" else 200,
                          help="generated covers per genre (default %(default)s)")
        if name in ("diversity", "report"):
            kind.add_argument("--pairs", default="1000" if name == "diversity" else "500",
                              help="random distinct pairs per genre, or 'all' (default %(default)s)")
        kind.add_argument("--max-real", type=int, default=1000, help="real covers per genre at most "
                                                                     "(a random subset; default %(default)s)")
        if name != "report":
            kind.add_argument("--genres", help="comma-separated genres (default: all)")
        kind.add_argument("--seed", type=int, default=0, help="noise and pair seed (default %(default)s)")
        kind.add_argument("--out", required=True, help="output folder")
    pairs = kinds.add_parser("pairs", help="covers of two genres: for each tag pair of the training data, "
                                           "top-two accuracy, realism and MS-SSIM of its equal mix against real "
                                           "covers of the pair")
    pairs.add_argument("--checkpoint", help="checkpoint or run folder (default: checkpoints/demo)")
    pairs.add_argument("--best", action="store_true", help=BEST_HELP)
    pairs.add_argument("--real", help="real covers with their tag sets: a labelled folder with tags.csv, a CSV "
                                      "with a genres column, or a pack (default: held-out demo covers, for a "
                                      "checkpoint trained on them)")
    pairs.add_argument("--n", type=int, default=200, help="generated covers per pair (default %(default)s)")
    pairs.add_argument("--seed", type=int, default=0, help="noise and pair seed (default %(default)s)")
    pairs.add_argument("--out", required=True, help="output folder")
    compare = kinds.add_parser("compare", help="compare run folders side by side")
    compare.add_argument("runs", nargs="+", help="run folders")
    compare.add_argument("--out", required=True, help="output folder")

    data = sub.add_parser("data",
                          help="build datasets: pack images for fast training, or collect covers from Spotify")
    data_kinds = data.add_subparsers(dest="data_command", required=True)
    pack = data_kinds.add_parser("pack", help="decode, crop and resize images once into a memory-mapped pack")
    pack.add_argument("source",
                      help="folder, CSV manifest (path,genre), archive (.tar[.gz], .zip) or folder of archives")
    pack.add_argument("--size", type=int, required=True, help="side in pixels, the model resolution (e.g. 64)")
    pack.add_argument("--out", required=True, help="the pack to write, e.g. data/omacir-64.pack")
    labels = pack.add_mutually_exclusive_group()
    labels.add_argument("--labelled", action="store_true", default=None,
                        help="keep genre labels: sub-folders (or an archive's first folder) are genres "
                             "(default: labelled when the source is a CSV or a folder of genre sub-folders)")
    labels.add_argument("--unlabelled", dest="labelled", action="store_false", default=None,
                        help="leave genre labels out, whatever the layout")
    pack.add_argument("--workers", type=int, default=None, help="decoding threads (default: 2 per core, at most 8)")
    pack.add_argument("--overwrite", action="store_true", help="replace an existing pack")
    pack.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                      help="progress bar (default: on a terminal)")

    spotify = data_kinds.add_parser("spotify", help="collect genre-labelled covers with the Spotify Web API "
                                                    "(credentials from SPOTIPY_CLIENT_ID / SPOTIPY_CLIENT_SECRET)")
    spotify.add_argument("--genres", required=True, help="comma-separated Spotify genres, e.g. rock,metal,jazz")
    spotify.add_argument("--per-genre", type=int, default=1000, help="covers per genre (default %(default)s)")
    spotify.add_argument("--out", required=True, help="output folder: OUT/<genre>/<album_id>.jpg and OUT/manifest.csv")
    spotify.add_argument("--image-size", type=int, default=640, help="cover size to download: 640, 300 or 64 "
                                                                      "(default %(default)s)")
    spotify.add_argument("--overlap", choices=["tags", "first", "drop"], default="tags",
                         help="an album of several genres (found under several, or its artist filed under several "
                              "of --genres): 'tags' keeps it once, in the folder of the first of --genres that found "
                              "it, with all its genres in the manifest's genres column; 'first' keeps only that "
                              "genre; 'drop' leaves it out (default %(default)s); overlaps.csv lists them")
    spotify.add_argument("--market", help="ISO country code to restrict albums to (default: any)")
    spotify.add_argument("--page-size", type=int, default=10,
                         help="results per API page, 1 to 50 (default %(default)s: accepted by every app; larger "
                              "pages mean fewer requests where your app may use them)")
    spotify.add_argument("--api-url", default="https://api.spotify.com/v1/",
                         help="Web API base URL (default %(default)s; change it for a proxy or a test server)")
    spotify.add_argument("--token-url", default="https://accounts.spotify.com/api/token",
                         help="token endpoint (default %(default)s)")
    spotify.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                         help="progress bar (default: on a terminal)")

    export = sub.add_parser("export", help="copy a checkpoint's generator alone (e.g. to ship it)")
    export.add_argument("--checkpoint", required=True, help="checkpoint or run folder")
    export.add_argument("--best", action="store_true", help=BEST_HELP)
    export.add_argument("--out", required=True, help="output checkpoint folder")
    export.add_argument("--fp16", action="store_true", help="store the weights in fp16 (half the size)")
    return parser


def cmd_demo_data(args: argparse.Namespace) -> None:
    from gan.data.demo import DEMO_GENRES, write_demo_dataset

    genres = tuple(g.strip() for g in args.genres.split(",")) if args.genres else DEMO_GENRES
    unknown = [g for g in genres if g not in DEMO_GENRES]
    if unknown:
        raise GanError(f"--genres: unknown demo genre(s) {unknown}; choose from {', '.join(DEMO_GENRES)}")
    if args.per_genre < 0 or args.unlabelled < 0:
        raise GanError("--per-genre and --unlabelled must not be negative")
    if not 8 <= args.size <= 1024:
        raise GanError(f"--size must be between 8 and 1024, got {args.size}")
    start = time.perf_counter()
    counts = write_demo_dataset(args.out, args.per_genre, args.unlabelled, args.size, args.seed, genres)
    seconds = time.perf_counter() - start
    total = counts["labelled"] + counts["unlabelled"]
    print(f"wrote {counts['labelled']} labelled covers ({len(genres)} genres) to {Path(args.out) / 'labelled'} and "
          f"{counts['unlabelled']} unlabelled to {Path(args.out) / 'unlabelled'} "
          f"in {seconds:.1f} s ({total / max(seconds, 1e-9):.0f} images/s)")


def plan_from_args(args: argparse.Namespace):
    from gan.train import PhasePlan, TrainingPlan

    # Every architecture field has a flag of its name (_add_train_flags); the genres come from the data.
    fields = {field.name: getattr(args, field.name) for field in dataclasses.fields(ModelConfig)
              if field.name != "genres"}
    for name in RESNET_ONLY:  # an option left unset (None): the default where the architecture has it, else off
        if fields[name] is None:
            default = getattr(ModelConfig, name)
            fields[name] = default if args.architecture == "resnet" else resnet_off(name)
    model = ModelConfig(**fields)
    model.validate()
    shared = {name: getattr(args, name) for name in TRAIN_HELP}
    shared.update(channels_last=args.channels_last, compile=args.compile, compile_mode=args.compile_mode,
                  mode_seeking_cap=args.mode_seeking_cap, genre_groups=args.genre_groups, tag_sets=args.tag_sets)
    pretrain = finetune = None
    if args.pretrain_data:
        if args.pretrain_steps < 1:
            raise GanError("--pretrain-data needs --pretrain-steps N (N >= 1)")
        pretrain = PhasePlan(TrainConfig(phase="pretrain", steps=args.pretrain_steps, **shared), args.pretrain_data)
        pretrain.train.validate()
    elif args.pretrain_steps:
        raise GanError("--pretrain-steps needs --pretrain-data DIR (unlabelled covers)")
    if args.data:
        steps = args.steps if args.steps is not None else TrainConfig().steps
        finetune = PhasePlan(TrainConfig(phase="finetune", steps=steps, **shared), args.data)
        finetune.train.validate()
    if args.init_from and not args.data:
        raise GanError("--init-from seeds fine-tuning: give --data too")
    if args.init_from and args.pretrain_data:
        raise GanError("--init-from and --pretrain-data both seed fine-tuning: give one (--init-from starts from "
                       "a trained model, --pretrain-data pre-trains one first)")
    return TrainingPlan(model=model, pretrain=pretrain, finetune=finetune, init_from=args.init_from)


def cmd_train(args: argparse.Namespace) -> None:
    from gan.train import run_training

    plan = None if args.resume else plan_from_args(args)
    final = run_training(args.out, plan, resume=args.resume, progress=args.progress,
                         finetune_steps=args.steps if args.resume else None)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one line rather than one per process
        print(f"done: final checkpoint {final}")


def cmd_generate(args: argparse.Namespace) -> None:
    from gan.sampling import DEFAULT_CHECKPOINT, load_generator, save_images
    from gan.tags import mix_name

    if args.checkpoint is None and not DEFAULT_CHECKPOINT.exists():
        raise GanError(f"no --checkpoint given and the bundled {DEFAULT_CHECKPOINT} is missing")
    if args.n < 1:
        raise GanError(f"--n must be at least 1, got {args.n}")
    generator = load_generator(args.checkpoint, device=args.device, best=args.best)
    if not generator.genres:
        genres: dict[str, Any] = {"unconditional": None}
    elif args.genre == "all":
        genres = {genre: genre for genre in generator.genres}
    else:
        mix = generator.genre_mix(args.genre)
        genres = {generator.genres[mix] if isinstance(mix, int) else mix_name(mix): mix}
    noise = generator.sample_noise(args.n, args.seed)  # the same noise for every genre
    out = Path(args.out)
    folders = {name: out / name for name in genres}
    for name, folder in folders.items():  # genre names are checked on loading; this holds whatever slips by
        if folder.resolve().parent != out.resolve():
            raise GanError(f"genre {name!r}: {folder} resolves outside --out {out}; nothing written")
    for name, folder in folders.items():
        save_images(generator.generate(noise, genres[name]), folder)
    print(f"wrote {args.n * len(genres)} covers to {out} ({', '.join(genres)})")


def cmd_export(args: argparse.Namespace) -> None:
    from gan.atomic import write_folder_atomically
    from gan.checkpoint import (
        CONFIG_FILE,
        GENERATOR_FILE,
        check_export_target,
        load_tensors,
        read_json,
        resolve_checkpoint,
    )
    from gan.sampling import load_generator

    source = resolve_checkpoint(args.checkpoint, best=args.best)
    check_export_target(Path(args.out), source)
    load_generator(source)  # refuse to export something that does not load
    tensors = load_tensors(source / GENERATOR_FILE, "generator weights")
    if args.fp16:
        tensors = {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
    config = read_json(source / CONFIG_FILE)
    config["exported_from"] = str(source)
    config["weights_dtype"] = "float16" if args.fp16 else "float32"
    # An earlier export is replaced; files put beside it (a README, a sample grid) stay.
    write_folder_atomically(Path(args.out), {CONFIG_FILE: config, GENERATOR_FILE: tensors}, keep_other_files=True)
    size = sum((Path(args.out) / name).stat().st_size for name in (CONFIG_FILE, GENERATOR_FILE)) / 2**20
    print(f"exported {source} to {args.out} ({size:.1f} MiB, {'fp16' if args.fp16 else 'fp32'} weights)")


def cmd_sweep(args: argparse.Namespace) -> None:
    from gan.train.sweep import run_sweep

    finals = run_sweep(args.out, plan_from_args(args), args.param, args.values.split(","), progress=args.progress)
    print("done: " + ", ".join(str(f) for f in finals))
    print(f"compare them: python -m gan evaluate compare {' '.join(str(f.parent.parent) for f in finals)} "
          f"--out {args.out}/comparison")


def _pairs(value: str) -> int | str:
    if value == "all":
        return value
    if not value.isdigit() or int(value) < 1:
        raise GanError(f"--pairs must be a positive number or 'all', got {value!r}")
    return int(value)


def cmd_evaluate(args: argparse.Namespace) -> None:
    from gan.data.real import real_images_by_genre
    from gan.eval import colour, compare, diversity, nearest, pairs, realism, report
    from gan.sampling import DEFAULT_CHECKPOINT, load_generator

    out = Path(args.out)
    if args.evaluation == "compare":
        path = compare.write_comparison([compare.load_run(r) for r in args.runs], out)
        print(f"wrote {path}")
        return
    if args.checkpoint is None and not DEFAULT_CHECKPOINT.exists():
        raise GanError(f"no --checkpoint given and the bundled {DEFAULT_CHECKPOINT} is missing")
    if args.n < 2:
        raise GanError(f"--n must be at least 2, got {args.n}")
    generator = load_generator(args.checkpoint, best=args.best)
    if args.evaluation == "pairs":
        report = pairs.evaluate_pairs(generator, args.n, args.seed, args.real)
        paths = pairs.write_pairs(report, out)
        for score in report.scores:
            print(f"{score.pair:24s} top two {score.top_two:4.0%} (real {score.real_top_two:4.0%})  realism "
                  f"{score.ratio:6.2f}  MS-SSIM {score.msssim_generated:.3f} (real {score.msssim_real:.3f})  "
                  f"{score.covers_in_data} covers in the data")
        print("wrote " + ", ".join(str(p) for p in paths.values()))
        return
    genres = [g.strip() for g in args.genres.split(",")] if getattr(args, "genres", None) else None
    real_dir = getattr(args, "real", None) or getattr(args, "data", None)
    real = real_images_by_genre(real_dir, generator.resolution, args.max_real, args.seed) if real_dir else None
    if real and genres:
        real = {g: v for g, v in real.items() if g in genres}
    if args.evaluation == "diversity":
        result = diversity.evaluate_diversity(generator, args.n, _pairs(args.pairs), args.seed, real, genres)
        paths = diversity.write_diversity(result, out)
        for s in result.summaries():
            print(f"{s['genre']:14s} {s['source']:9s} mean {s['mean']:.3f}  median {s['median']:.3f}  "
                  f"outliers {len(s['outliers'])}")
    elif args.evaluation == "colour":
        groups = colour.evaluate_colour(generator, args.n, args.seed, real, genres)
        paths = colour.write_colour(groups, out, {"n": args.n, "seed": args.seed})
    elif args.evaluation == "realism":
        result = realism.realism_against_real(generator, real, args.n, args.seed, genres)
        paths = realism.write_realism(result, out)
        for score in result.scores:
            print(f"{score.genre:14s} {score.ratio:6.2f} x the floor  (Frechet {score.frechet:.3f}, floor "
                  f"{score.frechet_floor:.3f}; KID {score.kid:.4f}, floor {score.kid_floor:.4f}; "
                  f"spread {score.spread:.2f} of real)")
    elif args.evaluation == "nearest":
        groups = nearest.evaluate_nearest(generator, real, args.n, args.seed)
        paths = nearest.write_nearest(groups, out, {"n": args.n, "seed": args.seed})
        for g in groups:
            s = g.summary()
            print(f"{s['genre']:14s} {s['share_closer_than_training']:.1%} closer than training covers are to "
                  f"each other (expected about {s['threshold_percentile']:.0f}% without copying)")
    else:
        paths = {"html": report.write_report(generator, out, real, args.n, _pairs(args.pairs), args.seed,
                                             real_source=args.real)}
    print("wrote " + ", ".join(str(p) for p in paths.values()))


def cmd_data(args: argparse.Namespace) -> None:
    if args.data_command == "pack":
        from gan.data.pack import write_pack

        if args.workers is not None and args.workers < 1:
            raise GanError(f"--workers must be at least 1, got {args.workers}")
        progress = sys.stderr.isatty() if args.progress is None else args.progress
        info = write_pack(args.source, args.out, args.size, args.labelled, args.overwrite, args.workers, progress)
        more = ", ..." if len(info.genres) > 8 else ""
        genres = f", {len(info.genres)} genres ({', '.join(info.genres[:8])}{more})" if info.genres else ", unlabelled"
        if info.genres and args.labelled is None and info.source_kind == "labelled-folder":
            genres += " from its sub-folders (--unlabelled leaves them out)"
        skipped = f", skipped {info.skipped} unreadable" if info.skipped else ""
        print(f"packed {info.count} images at {info.resolution} px{genres}{skipped} into {args.out} "
              f"in {info.seconds:.1f} s ({info.count / max(info.seconds, 1e-9):.0f} images/s)")
    else:
        cmd_spotify(args)


def cmd_spotify(args: argparse.Namespace) -> None:
    from gan.data.spotify import SpotifyBuildConfig, build_spotify_dataset, credentials_from_environment

    config = SpotifyBuildConfig(genres=[g.strip() for g in args.genres.split(",")], per_genre=args.per_genre,
                                image_size=args.image_size, overlap=args.overlap, market=args.market,
                                page_size=args.page_size, api_url=args.api_url, token_url=args.token_url)
    config.validate()  # a bad flag is reported before missing credentials
    client_id, client_secret = credentials_from_environment()
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    report = build_spotify_dataset(config, args.out, client_id, client_secret, progress)
    counts = ", ".join(f"{g} {n}" for g, n in report.kept.items())
    print(f"{sum(report.kept.values())} covers in {args.out} ({counts}); downloaded {report.downloaded}, "
          f"already there {report.reused}; {report.overlaps} album(s) in several genres (--overlap {config.overlap}), "
          f"{report.duplicates} duplicate image(s), {report.failed} failed download(s)")
    for genre, kept in report.short.items():
        print(f"warning: genre {genre!r}: only {kept} of {config.per_genre} covers found")
    manifest = Path(args.out) / "manifest.csv"
    print(f"train on it with: python -m gan train --data {manifest} --out runs/NAME")


COMMANDS = {"demo-data": cmd_demo_data, "data": cmd_data, "train": cmd_train, "generate": cmd_generate,
            "export": cmd_export, "sweep": cmd_sweep, "evaluate": cmd_evaluate}


def _stop_on_sigterm(signum, frame):  # noqa: ARG001
    # SIGTERM (the app's Stop button, `kill`) stops a command as Ctrl-C does. While a training
    # phase runs, both only ask the loop to stop after the step in flight (gan.train.stopping).
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    args = build_parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        COMMANDS[args.command](args)
    except GanError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        hint = f"; continue with: python -m gan train --out {args.out} --resume" if args.command == "train" else ""
        print(f"interrupted{hint}", file=sys.stderr)
        sys.exit(130)
    finally:
        signal.signal(signal.SIGTERM, previous)
