"""Print the table of Prefect's settings that prefectenv embeds (settings.json):
for every setting, the environment variable a worker passes it to its jobs as
(env_prefix + field name), the names Prefect reads it from in order, and the
kind of value, which decides how the worker writes the value back.

Run with the pinned prefect: python settings_table.py > ../settings.json
"""
import json
import typing

from pydantic import AliasChoices
from pydantic.types import SecretStr

from prefect.settings.base import PrefectBaseSettings
from prefect.settings.models.root import Settings


def kind(annotation):
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, getattr(__import__("types"), "UnionType", None)) and len(args) == 1:
        annotation = args[0]
    if annotation is bool:
        return "bool"
    if annotation is int:
        return "int"
    if annotation is float:
        return "float"
    if annotation in (str, SecretStr):
        return "str"
    return "other"


def walk(cls, out):
    for key, field in cls.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, PrefectBaseSettings):
            walk(ann, out)
            continue
        name = f"{cls.model_config.get('env_prefix')}{key.upper()}"
        names = [name]
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names = [a.upper() for a in alias.choices if isinstance(a, str)] or names
        elif isinstance(alias, str):
            names = [alias.upper()]
        out.append({"name": name, "reads": names, "kind": kind(ann)})


rows = []
walk(Settings, rows)
rows.sort(key=lambda r: r["name"])
print(json.dumps(rows, indent=1))
