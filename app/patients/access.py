"""Who may see which patients: staff see the patients of the programs they work for; admins see all.

Shapes: a *scope* is ``None`` (every program: admins) or a frozenset of program ids (possibly empty: a
user added to no program sees no patient). Views answer 403 when a patient is outside the scope.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Patient, User, UserProgram

ROLES = ("care_manager", "supervisor", "admin")
#: What each role may do beyond reading and working its own programs' queue (DESIGN §4.8).
#: care_manager: read, claim for themselves, acknowledge, resolve, undo their own action.
#: supervisor: all that, and assign escalations to anyone in their programs.
#: admin: every program, the audit log.
ASSIGN_ROLES = frozenset({"supervisor", "admin"})
AUDIT_ROLES = frozenset({"admin"})

Scope = frozenset[int] | None


def program_scope(session: Session, user: User) -> Scope:
    """The program ids ``user`` may see; ``None`` means every program (an admin)."""
    if user.role == "admin":
        return None
    return frozenset(session.scalars(select(UserProgram.program_id).where(UserProgram.user_id == user.id)).all())


def teams_of(session: Session, user: User) -> dict[int, str]:
    """``{program_id: team}`` for the programs where ``user`` belongs to a team."""
    rows = session.execute(
        select(UserProgram.program_id, UserProgram.team).where(
            UserProgram.user_id == user.id, UserProgram.team.is_not(None)
        )
    ).all()
    return {program_id: str(team) for program_id, team in rows}


def may_see(scope: Scope, patient: Patient) -> bool:
    return scope is None or patient.program_id in scope


def teammate_ids(session: Session, user: User) -> frozenset[int]:
    """Users sharing a (program, team) with ``user``, ``user`` included; empty set when they have no team."""
    mine = teams_of(session, user)
    if not mine:
        return frozenset()
    ids: set[int] = {user.id}
    for program_id, team in mine.items():
        ids.update(
            session.scalars(
                select(UserProgram.user_id).where(UserProgram.program_id == program_id, UserProgram.team == team)
            ).all()
        )
    return frozenset(ids)


def colleagues(session: Session, scope: Scope) -> list[User]:
    """Active users who work for a program in ``scope`` (every active user for ``None``), by email."""
    query = select(User).where(User.active.is_(True)).order_by(User.email)
    if scope is not None:
        query = query.where(User.id.in_(select(UserProgram.user_id).where(UserProgram.program_id.in_(scope))))
    return list(session.scalars(query).all())
