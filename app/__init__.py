"""The Streamlit app: pages and wiring only. Every computation it shows is a tested function in explorer/.

    app.main           run(): page config and st.navigation over the pages
    app.models         cached loading of models, map figures and upload analyses
    app.explorer_page  the latent-space explorer page, one *_ui function per panel

Importing any of these runs nothing; `streamlit run streamlit_app.py` calls app.main.run().
"""
