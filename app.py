"""CoverGAN Studio: the app's entry point. Run with `streamlit run app.py`.

It lists the pages and draws the sidebar's checkpoint picker once for all of them, so the choice
holds on every page; each page's file in app_pages/ lays out that page. (Not `pages/`: Streamlit would
also read such a folder as a second, older kind of page list.)
"""

import streamlit as st

from gan.studio import choose_checkpoint

st.set_page_config(page_title="CoverGAN Studio", page_icon="🎨", layout="wide")
page = st.navigation([
    st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("app_pages/latent_explorer.py", title="Latent explorer", icon=":material/tune:",
            url_path="Latent_explorer"),
    st.Page("app_pages/genre_grid.py", title="Genre grid", icon=":material/grid_view:", url_path="Genre_grid"),
    st.Page("app_pages/diversity.py", title="Diversity", icon=":material/scatter_plot:", url_path="Diversity"),
    st.Page("app_pages/colour.py", title="Colour", icon=":material/palette:", url_path="Colour"),
    st.Page("app_pages/quality.py", title="Quality", icon=":material/verified:", url_path="Quality"),
    st.Page("app_pages/train.py", title="Train", icon=":material/model_training:", url_path="Train"),
    st.Page("app_pages/runs.py", title="Runs", icon=":material/compare_arrows:", url_path="Runs"),
])
choose_checkpoint()
page.run()
