"""Credentials at run time: from the environment / `.env`, or from a Prefect Secret block."""

from __future__ import annotations

from pydantic import SecretStr

from zapflow.settings import AppSettings

__all__ = ["resolved_settings"]


def resolved_settings(settings: AppSettings | None = None) -> AppSettings:
    """`settings` (read from the environment when None) with the password filled from its Secret block.

    A password set directly wins; `ZAPFLOW_ZAPTEC_PASSWORD_BLOCK` names the block otherwise.
    Raises ValueError (with what to do) when the block does not exist.
    """
    settings = settings or AppSettings()
    zaptec = settings.zaptec
    if zaptec.password is not None or zaptec.password_block is None:
        return settings
    from prefect.blocks.system import Secret  # noqa: PLC0415 - only when a block is configured

    try:
        value = Secret.load(zaptec.password_block).get()
    except ValueError:
        msg = (
            f"no Prefect Secret block named {zaptec.password_block!r} (ZAPFLOW_ZAPTEC_PASSWORD_BLOCK): "
            "create it in the UI (Blocks > Secret) or with `prefect block create secret`"
        )
        raise ValueError(msg) from None
    password = SecretStr(str(value))
    return settings.model_copy(update={"zaptec": zaptec.model_copy(update={"password": password})})
