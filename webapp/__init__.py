"""GRM Studio's Gradio front. Handlers are thin calls into `core`."""
