"""``interview setup`` and ``interview web``: prepare the model files, serve the web app."""

from __future__ import annotations

import click

from bot.settings import Settings, get_settings

__all__ = ["setup", "web"]


@click.command()
@click.option("--force", is_flag=True, help="Re-export even if the files are up to date.")
def setup(force: bool) -> None:
    """Prepare offline model files: ONNX embedding model (needs torch, install time) and tiktoken files."""
    from bot.grading.budget import prepare_tiktoken_cache

    settings = get_settings()
    prepare_tiktoken_cache(settings.tiktoken_dir)
    click.echo(f"tiktoken files ready in {settings.tiktoken_dir}")
    if settings.embeddings == "local":
        from bot.install.model_export import export_minilm

        path = export_minilm(settings.embedding_model_dir, force=force)
        click.echo(f"embedding model ready in {path}")


@click.command()
@click.option("--host", default=None, help="Listen address (default: HOST or 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default: PORT or 8000).")
def web(host: str | None, port: int | None) -> None:
    """Start the Chainlit web app (http://localhost:8000 by default)."""
    import os

    from bot.adapters.web import serve
    from bot.history.users import auth_enabled
    from bot.retrieval.lock import DataDirBusy, data_lock

    settings = get_settings()
    if auth_enabled(settings) and not os.environ.get("CHAINLIT_AUTH_SECRET"):
        os.environ["CHAINLIT_AUTH_SECRET"] = _auth_secret(settings)
    try:
        with data_lock(settings, command="interview web"):  # one app per embedded data folder
            click.echo(f"Starting the app on http://{host or settings.host}:{port or settings.port}", err=True)
            serve(host or settings.host, port or settings.port)
    except DataDirBusy as exc:
        raise click.ClickException(str(exc)) from exc


def _auth_secret(settings: Settings) -> str:
    """Chainlit signs sign-in tokens with CHAINLIT_AUTH_SECRET; keep a random one in the data dir."""
    import os
    import secrets

    path = settings.data_dir / "chainlit-auth-secret"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secret)
    return secret
