"""Maps the top-level folders onto the one ``otaudit`` namespace (see pyproject.toml)."""

from setuptools import find_namespace_packages, setup

ROOTS = {
    "otaudit": "otaudit",
    "otaudit.collector": "collector",
    "otaudit.probes": "probes",
    "otaudit.server": "server",
    "otaudit.simulators": "simulators",
    "otaudit.baselines": "baselines",
}


def _packages() -> list[str]:
    found: list[str] = []
    for package, folder in ROOTS.items():
        found.append(package)
        found += [
            f"{package}.{sub}"
            for sub in find_namespace_packages(folder, exclude=["*__pycache__*"])
        ]
    return found


setup(
    packages=_packages(),
    package_dir=ROOTS,
    package_data={"": ["*"]},  # profiles, baselines and recordings are data files
)
