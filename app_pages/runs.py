"""Runs: compare training runs side by side, and the effect of a training parameter."""

import pandas as pd
import streamlit as st
from PIL import Image

from gan.eval.compare import config_differences, curves_figure, load_run
from gan.studio import RUNS_DIR
from gan.train.history import config_table, metric_choices, nearest_sample_steps, phases_logged
from gan.train.launcher import list_runs

PHASE_NAMES = {"pretrain": "pre-training", "finetune": "fine-tuning"}
st.title("Compare runs")
st.caption("Sweeps (`python -m gan sweep --param latent_dim --values 32,64,128 --out runs/sweep`) write one run "
           "per value; pick them here to see what the parameter changes.")

roots = [RUNS_DIR] + [d for d in sorted(RUNS_DIR.iterdir()) if d.is_dir() and not (d / "config.json").exists()] \
    if RUNS_DIR.is_dir() else []
statuses = [s for root in roots for s in list_runs(root) if (s.path / "config.json").is_file()]
if len(statuses) < 2:
    st.info(f"Compare needs at least two runs in {RUNS_DIR}; start some on the Train page or with "
            "`python -m gan sweep`.")
    st.stop()
labels = {str(s.path.relative_to(RUNS_DIR)): s.path for s in statuses}
chosen = st.multiselect("Runs", list(labels), default=list(labels)[:2], key="runs_chosen", persist_state="session")
if len(chosen) < 2:
    st.warning("Pick two or more runs.")
    st.stop()
runs = [load_run(labels[c]) for c in chosen]
st.subheader("What differs")
differences = config_differences(runs)
if differences:
    st.dataframe(pd.DataFrame(config_table(differences), index=chosen).T, width="stretch")
else:
    st.write("The configurations are identical.")

phases = phases_logged([row for run in runs for row in run.metrics])
if not phases:
    st.info("These runs have logged no metrics yet.")
    st.stop()
phase = st.radio("Phase", phases, format_func=PHASE_NAMES.get, horizontal=True, index=len(phases) - 1,
                 key="runs_phase")
choices = metric_choices([run.metrics for run in runs], phase)
if st.session_state.get("runs_metric") not in choices:
    st.session_state.pop("runs_metric", None)  # chosen for another phase or other runs
metric = st.selectbox("Curve (the metrics this phase logged)", list(choices), key="runs_metric",
                      persist_state="session")
st.plotly_chart(curves_figure(runs, choices[metric][0], phase), width="stretch")

steps = nearest_sample_steps([[s for p, s in run.samples if p == phase] for run in runs])
if steps is None:
    st.info(f"Not every chosen run has a sample grid from {PHASE_NAMES[phase]}.")
else:
    same = len(set(steps)) == 1
    st.subheader(f"Sample grids at {PHASE_NAMES[phase]} step {steps[0]:,}" if same else
                 f"Sample grids at the nearest {PHASE_NAMES[phase]} steps")
    if not same:
        st.caption("These runs share no sample step: each is shown at its step closest to the furthest step all "
                   "reached (" + ", ".join(f"{run.name} at {step:,}" for run, step in zip(runs, steps)) + ").")
    for column, run, step in zip(st.columns(len(runs)), runs, steps):
        grid = run.samples[(phase, step)]
        with Image.open(grid) as image:  # small grids (32 px covers) are drawn larger, big ones fit the column
            width = min(max(image.width, 360), 900)
        column.image(str(grid), caption=f"{run.name}, step {step:,}", width=width)
