"""Train: start `python -m gan train` as a separate process, watch it, stop and resume it."""

import streamlit as st
import torch

from gan.errors import GanError
from gan.eval.compare import load_run, losses_figure
from gan.studio import RUNS_DIR, resolve_user_path
from gan.train.launcher import launch, list_runs, log_tail, stop
from gan.train.run import validate_run_name

st.set_page_config(page_title="Train · CoverGAN Studio", layout="wide")
st.title("Train")
st.caption("Each run is a separate process: it keeps going if you close this page, and writes everything "
           f"into {RUNS_DIR}/NAME.")

devices = ["auto", "cpu"] + [f"cuda:{k}" for k in range(torch.cuda.device_count())]
with st.form("train"):
    name = st.text_input("Run name (letters, digits, '.', '_', '-')", "my-run", key="train_name")
    data = st.text_input("Fine-tuning data (one sub-folder per genre, a CSV, archive(s) or a pack)",
                         "demo-data/labelled", key="train_data")
    pretrain = st.checkbox("Pre-train first on unlabelled covers", True, key="train_pretrain")
    pretrain_data = st.text_input("Pre-training data (unlabelled: a folder, archive(s) or a pack)", "demo-data/unlabelled",
                                  key="train_pre_data")
    columns = st.columns(4)
    pretrain_steps = columns[0].number_input("Pre-training steps", 1, 10**7, 300, key="train_pre_steps")
    steps = columns[1].number_input("Fine-tuning steps", 1, 10**7, 600, key="train_steps")
    batch_size = columns[2].number_input("Batch size", 1, 4096, 64, key="train_batch")
    resolution = columns[3].selectbox("Resolution", [32, 64, 128], index=1, key="train_resolution")
    columns = st.columns(4)
    lr_g = columns[0].number_input("Generator learning rate", 1e-6, 1.0, 2e-4, format="%.5f", key="train_lr_g")
    lr_d = columns[1].number_input("Discriminator learning rate", 1e-6, 1.0, 2e-4, format="%.5f", key="train_lr_d")
    latent_dim = columns[2].number_input("Latent size", 1, 4096, 128, key="train_latent")
    width = columns[3].number_input("Width", 4, 1024, 32, key="train_width")
    columns = st.columns(2)
    device = columns[0].selectbox("Device", devices, key="train_device")
    projection = columns[1].checkbox("Genre-aware discriminator (projection)", False, key="train_projection",
                                     help="Off: the plain AC-GAN discriminator, whose realness is genre-blind")
    start = st.form_submit_button("Start training")

if start:
    try:
        validate_run_name(name)
        args = ["--data", str(resolve_user_path(data)), "--steps", str(steps), "--batch-size", str(batch_size),
                "--resolution", str(resolution), "--lr-g", str(lr_g), "--lr-d", str(lr_d),
                "--latent-dim", str(latent_dim), "--width", str(width), "--device", device,
                "--projection" if projection else "--no-projection"]
        if pretrain:
            args += ["--pretrain-data", str(resolve_user_path(pretrain_data)), "--pretrain-steps", str(pretrain_steps)]
        for folder in [data] + ([pretrain_data] if pretrain else []):
            if not resolve_user_path(folder).exists():
                raise GanError(f"{folder}: data not found")
        launch(RUNS_DIR, name, args)
        st.success(f"Started run {name}.")
    except GanError as error:
        st.error(str(error))


@st.fragment(run_every=3)
def live_runs():
    runs = list_runs(RUNS_DIR)
    if not runs:
        st.info("No runs yet.")
        return
    for status in reversed(runs):
        with st.container(border=True):
            head = st.columns([3, 1, 1])
            speed = f", {status.img_per_s:.0f} images/s" if status.img_per_s else ""
            head[0].markdown(f"**{status.name}**: {status.state}, {status.phase or 'starting'} "
                             f"({status.step}/{status.total_steps} steps{speed})")
            if status.state == "running":
                if head[1].button("Stop", key=f"stop-{status.name}"):
                    stop(status.path, timeout=10)
                    st.rerun()
            elif status.state in ("stopped", "failed"):
                if head[1].button("Resume", key=f"resume-{status.name}"):
                    try:
                        launch(RUNS_DIR, status.name, [], resume=True)
                    except GanError as error:
                        st.error(str(error))
                    st.rerun()
            st.progress(status.progress)
            body = st.columns([2, 1])
            run = load_run(status.path)
            if run.metrics:
                phase = status.phase or "finetune"
                body[0].plotly_chart(losses_figure(run, phase), width="stretch", key=f"curve-{status.name}")
            if status.latest_sample:
                body[1].image(str(status.latest_sample), caption=status.latest_sample.name)
            if status.state == "failed":
                st.code(log_tail(status.path), language=None)


st.subheader("Runs")
live_runs()
