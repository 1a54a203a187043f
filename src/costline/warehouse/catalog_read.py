"""Reading a catalogue in whichever form it comes.

Besides costline's own JSON (:mod:`costline.warehouse.catalog`), the layout is read where
repositories already keep it, without credentials: a dbt manifest or project
(:mod:`costline.warehouse.catalog_dbt`) and the ``metadata.yaml`` files of a BigQuery ETL tree
(:mod:`costline.warehouse.catalog_metadata`).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from costline.core.errors import CostlineError, first_validation_error
from costline.warehouse.catalog import Catalog, read_json
from costline.warehouse.catalog_dbt import manifest_catalog, read_dbt_project
from costline.warehouse.catalog_metadata import read_metadata_table, read_metadata_tree

ACCEPTED_FORMS = (
    "a costline catalogue (JSON with 'tables'), a dbt manifest (target/manifest.json), "
    "a dbt project directory (dbt_project.yml) or a directory of metadata.yaml files "
    "(sql/<project>/<dataset>/<table>/metadata.yaml)"
)


def load_catalog(path: Path) -> Catalog:
    """Read the catalogue at ``path``, whichever of the accepted forms it is.

    - a JSON file with ``tables``: a costline catalogue;
    - a JSON file with ``metadata.dbt_schema_version``: a dbt manifest;
    - a directory holding ``target/manifest.json`` (or ``manifest.json``): that manifest;
    - a directory holding ``dbt_project.yml``: the dbt project, read without compiling it;
    - a directory with ``metadata.yaml`` files below it: a BigQuery ETL tree;
    - a ``dbt_project.yml`` or ``metadata.yaml`` file: its project, or its one table.

    A file named on its own that cannot be used raises a :class:`CostlineError` naming the
    file, the line where one is known, and the entry. In a tree, a bad file is one of the
    catalogue's ``problems`` instead, and the rest is read.
    """
    if path.is_dir():
        for manifest in (path / "target" / "manifest.json", path / "manifest.json"):
            if manifest.is_file():
                return load_catalog(manifest)
        if (path / "dbt_project.yml").is_file():
            return read_dbt_project(path)
        if next(path.rglob("metadata.yaml"), None) is not None:
            return read_metadata_tree(path)
        raise CostlineError(f"{path}: no catalogue found; expected {ACCEPTED_FORMS}")
    if path.name == "dbt_project.yml" and path.is_file():
        return read_dbt_project(path.parent)
    if path.name == "metadata.yaml" and path.is_file():
        return read_metadata_table(path)
    data = read_json(path, "catalogue", f"not a text file; expected {ACCEPTED_FORMS}")
    if isinstance(data, dict) and "tables" in data:
        try:
            catalog = Catalog.model_validate(data)
        except ValidationError as exc:
            raise CostlineError(f"{path}: {first_validation_error(exc)}") from None
        return catalog.model_copy(update={"source": f"costline catalogue {path}"})
    metadata = data.get("metadata") if isinstance(data, dict) else None
    if isinstance(metadata, dict) and "dbt_schema_version" in metadata:
        return manifest_catalog(data, path)
    raise CostlineError(f"{path}: not a catalogue; expected {ACCEPTED_FORMS}")
