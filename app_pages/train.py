"""Train: start `python -m gan train` as a separate process, watch it, stop, resume or extend it."""

import streamlit as st

from gan.checkpoint import list_checkpoints
from gan.errors import GanError
from gan.eval.compare import load_run
from gan.eval.figures import run_charts
from gan.studio import PROJECT_ROOT, RUNS_DIR, open_in_explorer, option_input
from gan.train.history import phases_logged
from gan.train.launcher import launch, list_runs, log_tail, stop
from gan.train.options import (
    DEMO_DATA_DIR,
    MAIN_OPTIONS,
    QUICK_START,
    device_choices,
    start_run,
    train_more,
    train_options,
    write_demo_data,
)

PHASE_NAMES = {"pretrain": "pre-training", "finetune": "fine-tuning"}
ACTIVE = ("starting", "running")
DETAILED = 3  # runs shown with curves and samples without asking (the active ones always are)

st.title("Train")
st.caption("Each run is a separate process: it keeps going if you close this page, and writes everything "
           f"into {RUNS_DIR}/NAME.")
runs_panel = st.container()  # filled last, so a run started by the form below shows at once


def run_card(status, detailed: bool) -> None:
    with st.container(border=True):
        head = st.columns([5, 3], vertical_alignment="center")
        steps = " · ".join(f"{PHASE_NAMES[p.phase]} {p.step:,}/{p.total_steps:,}" for p in status.phases)
        speed = f" · {status.img_per_s:.0f} images/s" if status.img_per_s and status.state == "running" else ""
        head[0].markdown(f"**{status.name}**: {status.state}" + (f" · {steps}" if steps else "") + speed)
        actions = head[1].columns(2)
        name = status.name
        if status.state in ACTIVE:
            if actions[0].button("Stop", key=f"stop-{name}", help="It saves a checkpoint and a sample first"):
                stop(status.path, timeout=15)
                st.rerun(scope="fragment")
        elif status.state in ("stopped", "failed") and status.phases:
            if actions[0].button("Resume", key=f"resume-{name}"):
                try:
                    launch(RUNS_DIR, name, [], resume=True)
                except GanError as error:
                    st.error(str(error))
                else:
                    st.rerun(scope="fragment")
        if status.state == "finished":
            with actions[0].popover("Train more"):
                finetune = next((p for p in status.phases if p.phase == "finetune"), None)
                if finetune is None:
                    st.write("This run has no fine-tuning phase to extend.")
                else:
                    target = st.number_input("Fine-tune on to step", finetune.total_steps + 1, 10**7,
                                             finetune.total_steps * 2, key=f"more-steps-{name}")
                    if st.button("Start", key=f"more-{name}"):
                        try:
                            train_more(RUNS_DIR, name, int(target))
                        except GanError as error:
                            st.error(str(error))
                        else:
                            st.rerun(scope="fragment")
        if list_checkpoints(status.path) and actions[1].button("Open in explorer", key=f"open-{name}",
                                                               help="Choose its newest checkpoint in the sidebar"):
            open_in_explorer(status.path)
        st.progress(status.progress)
        if status.state == "failed":
            st.code(log_tail(status.path), language=None)
        if not detailed and not st.toggle("Curves and samples", key=f"details-{name}"):
            return
        run = load_run(status.path) if status.phases else None
        phases = phases_logged(run.metrics) if run else []
        cells = []
        if status.latest_sample is not None:
            phase, _, step = status.latest_sample.stem.partition("-")
            layout = "rows: noise, columns: genres" if phase == "finetune" else "one cover per noise vector"
            cells.append(("image", status.latest_sample,
                          f"Latest sample: {PHASE_NAMES.get(phase, phase)} step {int(step):,} ({layout})"))
        if phases:
            phase = phases[-1]
            if len(phases) > 1:
                phase = st.segmented_control("Phase", phases, format_func=PHASE_NAMES.get, default=phases[-1],
                                             key=f"phase-{name}") or phases[-1]
            cells += [("chart", figure, None) for figure in run_charts(run.metrics, phase)]
        elif status.state in ACTIVE:
            st.caption("No metrics yet: the first row comes after --log-every steps.")
        for row in range(0, len(cells), 3):
            for column, (kind, item, caption) in zip(st.columns(3), cells[row:row + 3]):
                if kind == "image":
                    column.image(str(item), caption=caption, width="stretch")
                else:
                    column.plotly_chart(item, width="stretch", key=f"chart-{name}-{item.layout.title.text}")


@st.fragment(run_every=3)
def live_runs() -> None:
    statuses = list_runs(RUNS_DIR)
    if not statuses:
        st.info("No runs yet: start one with the form below.")
        return
    # Active runs first, then the most recently changed.
    statuses.sort(key=lambda s: (s.state not in ACTIVE, -max((p.stat().st_mtime for p in s.path.iterdir()),
                                                              default=0)))
    for index, status in enumerate(statuses):
        run_card(status, detailed=status.state in ACTIVE or index < DETAILED)


st.subheader("Start a new run")
demo_paths = {"labelled": DEMO_DATA_DIR / "labelled", "unlabelled": DEMO_DATA_DIR / "unlabelled"}
if not all(p.is_dir() for p in demo_paths.values()):
    st.info(f"The form's default data ({DEMO_DATA_DIR.name}/labelled and {DEMO_DATA_DIR.name}/unlabelled) is not "
            "there yet. Write the demo covers (8 genres x 1,000 labelled and 5,000 unlabelled covers, 64 px, "
            "seed 0, as `python -m gan demo-data --out demo-data` does), or give your own folders below.")
    if st.button("Write the demo covers", type="primary", key="write_demo"):
        with st.spinner("Drawing the demo covers (about 10 s)..."):
            write_demo_data()
        st.session_state["train_notice"] = f"Wrote the demo covers to {DEMO_DATA_DIR}: the form's defaults are ready."
        st.rerun()
if "train_notice" in st.session_state:
    st.success(st.session_state.pop("train_notice"))


def shown(path) -> str:
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)


options = train_options(device_choices())
main = [o for o in options if o.name in MAIN_OPTIONS]
with st.form("train"):
    columns = st.columns([2, 3])
    name = columns[0].text_input("Run name (letters, digits, '.', '_', '-')", "my-run", key="train_name",
                                 persist_state="session")
    data = columns[1].text_input("Fine-tuning data (one sub-folder per genre, a CSV, archive(s) or a pack)",
                                 shown(demo_paths["labelled"]), key="train_data", persist_state="session")
    columns = st.columns([2, 3])
    pretrain = columns[0].checkbox("Pre-train first on unlabelled covers", True, key="train_pretrain",
                                   persist_state="session")
    pretrain_data = columns[1].text_input("Pre-training data (unlabelled: a folder, archive(s) or a pack)",
                                          shown(demo_paths["unlabelled"]), key="train_pre_data",
                                          persist_state="session")
    columns = st.columns(len(main) + 2)
    pretrain_steps = columns[0].number_input("Pre-training steps", 1, 10**7, QUICK_START["pretrain_steps"],
                                             key="train_pre_steps", persist_state="session")
    steps = columns[1].number_input("Fine-tuning steps", 1, 10**7, QUICK_START["steps"], key="train_steps",
                                    persist_state="session")
    values = {o.name: option_input(o, column) for o, column in zip(main, columns[2:])}
    with st.expander("Advanced: every other training option, with its default"):
        rest = [o for o in options if o.name not in MAIN_OPTIONS]
        for row in range(0, len(rest), 4):
            for option, column in zip(rest[row:row + 4], st.columns(4)):
                values[option.name] = option_input(option, column)
    start = st.form_submit_button("Start training", type="primary", key="train_start")

if start:
    try:
        start_run(RUNS_DIR, name, values, data, int(steps), pretrain_data if pretrain else None, int(pretrain_steps))
        st.success(f"Started run {name}: it shows at the top of this page.")
    except GanError as error:
        st.error(str(error))

with runs_panel:
    st.subheader("Runs")
    live_runs()
