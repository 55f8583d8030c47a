"""Privacy: pseudonymous user ids for demo mode, and `forget_user` (delete one user everywhere it is stored)."""

from core.privacy.forget import FORGOTTEN_KEY, ForgetResult, derived_folders, forget_user, rejects_carrying
from core.privacy.pseudonyms import (
    DEMO_ENV,
    DEMO_KEY_ENV,
    PREFIX,
    Pseudonymizer,
    demo_enabled,
    demo_from_env,
    new_demo_key,
)

__all__ = [
    "FORGOTTEN_KEY",
    "ForgetResult",
    "forget_user",
    "rejects_carrying",
    "derived_folders",
    "DEMO_ENV",
    "DEMO_KEY_ENV",
    "PREFIX",
    "Pseudonymizer",
    "demo_enabled",
    "demo_from_env",
    "new_demo_key",
]
