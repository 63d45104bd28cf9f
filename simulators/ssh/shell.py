"""How each simulated personality answers a command line (no command is ever executed).

Known commands come from the profile. ``cat`` on a Linux host reads the profile's
``files`` (globs included) and otherwise fails like GNU cat. Anything else gets the
dialect's own error: bash's ``command not found`` (exit 127), IOS's ``% Invalid input``
marker, HiOS's ``Error:`` line, or PowerShell's "is not recognized" error (a Windows host
answers only the exact commands of its profile: no cmdlet is interpreted).
"""

from __future__ import annotations

import fnmatch
import shlex

from otaudit.simulators.ssh.profile import CommandReply, Profile


def answer(profile: Profile, command: str) -> tuple[CommandReply, bool]:
    """The reply to ``command`` and whether the profile knows it."""
    command = command.strip()
    if command in profile.commands:
        return profile.commands[command], True
    if profile.personality == "linux":
        return _linux(profile, command)
    if profile.personality == "cisco_ios":
        return _ios_invalid(command), False
    if profile.personality == "windows":
        return _powershell_unknown(command), False
    return CommandReply(stdout=f"Error: Invalid command '{command}'\n".encode(),
                        exit_status=1), False


def _linux(profile: Profile, command: str) -> tuple[CommandReply, bool]:
    try:
        words = shlex.split(command)
    except ValueError:
        return CommandReply(stderr=b"bash: syntax error: unexpected end of file\n",
                            exit_status=2), False
    if not words:
        return CommandReply(), False
    if words[0] == "cat" and len(words) > 1 and not any(w.startswith("-") for w in words[1:]):
        return _cat(profile, words[1:]), True
    return CommandReply(stderr=f"bash: {words[0]}: command not found\n".encode(),
                        exit_status=127), False


def _cat(profile: Profile, paths: list[str]) -> CommandReply:
    out, err, status = bytearray(), bytearray(), 0
    for pattern in paths:
        matches = sorted(p for p in profile.files if fnmatch.fnmatchcase(p, pattern))
        if not matches:
            shown = f"'{pattern}'" if any(c in pattern for c in "*?[ ") else pattern
            err += f"cat: {shown}: No such file or directory\n".encode()
            status = 1
        for path in matches:
            out += profile.files[path]
    return CommandReply(stdout=bytes(out), stderr=bytes(err), exit_status=status)


def _powershell_unknown(command: str) -> CommandReply:
    word = (command.split() or [""])[0][:80]
    text = (f"{word} : The term '{word}' is not recognized as the name of a cmdlet, function, "
            "script file, or operable program. Check the spelling of the name, or if a path "
            "was included, verify that the path is correct and try again.\r\n")
    return CommandReply(stderr=text.encode(), exit_status=1)


def _ios_invalid(command: str) -> CommandReply:
    words = command.split()
    column = command.find(words[1]) if len(words) > 1 and words[0] == "show" else 0
    text = f"{command}\n{' ' * column}^\n% Invalid input detected at '^' marker.\n\n"
    return CommandReply(stdout=text.encode(), exit_status=0)


def prompt(profile: Profile, user: str) -> str:
    """The interactive prompt of the personality."""
    if profile.personality == "linux":
        return f"{user}@{profile.hostname}:~$ "
    if profile.personality == "cisco_ios":
        return f"{profile.hostname}#"
    if profile.personality == "windows":
        return f"PS C:\\Users\\{user}> "
    return f"({profile.hostname}) >"
