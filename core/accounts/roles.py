"""Who may do what: the four roles, the one table of actions that change something, and :func:`require`.

Roles are ranked ``viewer < annotator < trainer < admin``; each action names the least role allowed to do
it, and every higher role may do it too. The table below is the only place that says so: pages and
commands ask :func:`require` (or :func:`allowed`, to grey out a button) by the action's name.

* viewer — look at everything and download it;
* annotator — + edit masks, mark them reviewed, ask a model for proposals;
* trainer — + import data, train, evaluate, predict, export, import models, edit run notes;
* admin — + delete, rename, manage users, read the audit log, stop other people's runs.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol


class Role(enum.StrEnum):
    """A user's role. Compared by rank, never alphabetically (``"admin" < "viewer"`` as text).

    >>> Role.VIEWER < Role.ANNOTATOR < Role.TRAINER < Role.ADMIN, Role("trainer") >= Role.ANNOTATOR
    (True, True)
    >>> sorted([Role.ADMIN, Role.VIEWER, Role.TRAINER])
    [<Role.VIEWER: 'viewer'>, <Role.TRAINER: 'trainer'>, <Role.ADMIN: 'admin'>]
    """

    VIEWER = "viewer"
    ANNOTATOR = "annotator"
    TRAINER = "trainer"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    # str's own comparisons would order the roles alphabetically; these order them by rank.
    def __lt__(self, other: object) -> bool:
        return self.rank < other.rank if isinstance(other, Role) else NotImplemented

    def __le__(self, other: object) -> bool:
        return self.rank <= other.rank if isinstance(other, Role) else NotImplemented

    def __gt__(self, other: object) -> bool:
        return self.rank > other.rank if isinstance(other, Role) else NotImplemented

    def __ge__(self, other: object) -> bool:
        return self.rank >= other.rank if isinstance(other, Role) else NotImplemented


_RANKS = {role: rank for rank, role in enumerate(Role)}
ROLES = tuple(role.value for role in Role)


def parse_role(text: str) -> Role:
    """The role named ``text`` (any case, spaces around ignored); a ``ValueError`` listing the roles otherwise.

    >>> parse_role(" Trainer ")
    <Role.TRAINER: 'trainer'>
    """
    try:
        return Role(str(text).strip().lower())
    except ValueError:
        raise ValueError(f"unknown role {text!r}; expected one of {', '.join(ROLES)}.") from None


@dataclass(frozen=True)
class Action:
    """One thing a user can do that changes something (or, for ``audit.read``, reveals other people's data)."""

    name: str
    least_role: Role
    what: str


_V, _A, _T, _M = Role.VIEWER, Role.ANNOTATOR, Role.TRAINER, Role.ADMIN

# Every mutating action of the pages and of `python -m core`. Keep it in sync when a page gains a button
# that changes something: an action missing here is refused with UnknownAction, never silently allowed.
ACTIONS: dict[str, Action] = {
    action.name: action
    for action in (
        Action("cells.export", _V, "write cell outlines (Fiji, QuPath, OME, CSV) to download them"),
        Action("mask.save", _A, "save a mask: a drawing, a revert to an earlier version, an accepted proposal"),
        Action("mask.review", _A, "mark an image's mask reviewed, or not"),
        Action("propose", _A, "let a model propose masks for a dataset's unlabelled images"),
        Action("dataset.import", _T, "import a dataset (folder on the server or uploaded zip)"),
        Action("dataset.add_images", _T, "add images (with or without masks) to an imported dataset"),
        Action("dataset.set_pixel_size", _T, "set a dataset's pixel size by hand"),
        Action("augment.save_preset", _T, "save augmentation settings as a named preset"),
        Action("train.launch", _T, "start a training run: launch, learning-rate finder, resume, retrain, refine"),
        Action("train.stop", _T, "stop a background job (training, evaluation, …) this user started"),
        Action("evaluate", _T, "score a run on a dataset split"),
        Action("predict", _T, "segment new images with a run or a shipped model"),
        Action("export", _T, "export a run's model (Keras, SavedModel, bioimage.io package)"),
        Action("model.import", _T, "import a bioimage.io model package into the model registry"),
        Action("run.edit_notes", _T, "change a run's name, tags and notes"),
        Action("run.save_inference_settings", _T, "save a threshold and post-processing with a run's model"),
        Action("cluster.probe", _T, "send the small Slurm job that checks the compute nodes"),
        Action("dataset.rename", _M, "rename a dataset"),
        Action("dataset.delete", _M, "delete a dataset's imported copy and its mask edits"),
        Action("run.delete", _M, "hide (delete) runs from the lists, or bring them back"),
        Action("train.stop_other", _M, "stop a background job another user started"),
        Action("model.train_generalist", _M, "rebuild the shipped generalist model that everyone's proposals use"),
        Action("users.manage", _M, "add users, change their role or password, disable or enable them"),
        Action("audit.read", _M, "read the audit log (every user's actions and addresses)"),
    )
}


class UnknownAction(ValueError):
    """An action name that is not in :data:`ACTIONS` (a typo in a page, or a new button not yet listed)."""

    def __init__(self, action: str):
        self.action = action
        super().__init__(
            f"unknown action {action!r}: it is not in the permission table "
            "(core/accounts/roles.py ACTIONS); add it there with the least role allowed to do it."
        )


class Actor(Protocol):
    """Anyone who acts: a :class:`core.accounts.users.User`, or the local user of ``make run``."""

    name: str
    role: Role
    disabled: bool


class PermissionDenied(ValueError):
    """``user`` may not do ``action``; the message says who, with which role, and which role it needs."""

    def __init__(self, user: str, role: Role | None, action: str, needed: Role | None):
        self.user, self.role, self.action, self.needed = user, role, action, needed
        if needed is None:  # the account is disabled: no role helps
            text = f"{user} may not {action}: the account is disabled. Ask an administrator to enable it."
        else:
            text = (
                f"{user} (role {role}) may not {action}: it needs the role {needed} or higher. "
                "Ask an administrator to change your role."
            )
        super().__init__(text)


def least_role(action: str) -> Role:
    """The least role allowed to do ``action``; :class:`UnknownAction` for a name not in the table.

    >>> least_role("mask.save"), least_role("dataset.delete")
    (<Role.ANNOTATOR: 'annotator'>, <Role.ADMIN: 'admin'>)
    """
    try:
        return ACTIONS[action].least_role
    except KeyError:
        raise UnknownAction(action) from None


def allowed(role: Role, action: str) -> bool:
    """Whether ``role`` may do ``action`` (to show or grey out a control).

    >>> allowed(Role.ANNOTATOR, "mask.save"), allowed(Role.ANNOTATOR, "train.launch")
    (True, False)
    """
    return Role(role) >= least_role(action)


def require(user: Actor, action: str) -> None:
    """Return when ``user`` may do ``action``; raise :class:`PermissionDenied` otherwise.

    A disabled account may do nothing, whatever its role.

    >>> from types import SimpleNamespace
    >>> require(SimpleNamespace(name="ana", role=Role.TRAINER, disabled=False), "train.launch")  # allowed
    >>> try:
    ...     require(SimpleNamespace(name="ana", role=Role.TRAINER, disabled=False), "dataset.delete")
    ... except PermissionDenied as refusal:
    ...     print(refusal)  # doctest: +ELLIPSIS
    ana (role trainer) may not dataset.delete: it needs the role admin or higher. Ask an administrator...
    """
    needed = least_role(action)
    if getattr(user, "disabled", False):
        raise PermissionDenied(user.name, user.role, action, None)
    if Role(user.role) < needed:
        raise PermissionDenied(user.name, Role(user.role), action, needed)
