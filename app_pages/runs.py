"""Runs: compare training runs side by side, and the effect of a training parameter."""

import pandas as pd
import streamlit as st

from gan.eval.compare import CURVE_METRICS, common_sample_step, config_differences, curves_figure, load_run
from gan.studio import RUNS_DIR
from gan.train.launcher import list_runs

st.set_page_config(page_title="Runs · CoverGAN Studio", layout="wide")
st.title("Compare runs")
st.caption("Sweeps (`python -m gan sweep --param latent_dim --values 32,64,128 --out runs/sweep`) write one run "
           "per value; pick them here to see what the parameter changes.")

roots = [RUNS_DIR] + [d for d in sorted(RUNS_DIR.iterdir()) if d.is_dir() and not (d / "config.json").exists()] \
    if RUNS_DIR.is_dir() else []
statuses = [s for root in roots for s in list_runs(root)]
if len(statuses) < 2:
    st.info(f"Compare needs at least two runs in {RUNS_DIR}; start some on the Train page or with "
            "`python -m gan sweep`.")
    st.stop()
labels = {str(s.path.relative_to(RUNS_DIR)): s.path for s in statuses}
chosen = st.multiselect("Runs", list(labels), default=list(labels)[:2], key="runs_chosen")
if len(chosen) < 2:
    st.warning("Pick two or more runs.")
    st.stop()
runs = [load_run(labels[c]) for c in chosen]
differences = config_differences(runs)
st.subheader("What differs")
if differences:
    st.dataframe(pd.DataFrame(differences, index=chosen).T, width="stretch")
else:
    st.write("The configurations are identical.")

phase = st.radio("Phase", ["finetune", "pretrain"], horizontal=True, key="runs_phase")
metric = st.selectbox("Curve", CURVE_METRICS, key="runs_metric")
st.plotly_chart(curves_figure(runs, metric, phase), width="stretch")

step = common_sample_step(runs, phase)
if step is None:
    st.info("These runs share no sample step in this phase.")
else:
    st.subheader(f"Sample grids at {phase} step {step}")
    for column, run in zip(st.columns(len(runs)), runs):
        column.image(str(run.samples[(phase, step)]), caption=run.name)
