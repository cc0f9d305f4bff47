"""PolyFact: the dataset layer (languages, relations, sources, questions, splits, answer matching).

Nothing here touches a model. Public entry points::

    from polyfact import LANGUAGES, RELATIONS, build_dataset, load_dataset_dir, match
"""

from core.errors import PolyFactError
from polyfact.languages import LANGUAGES, Language, get_language, parse_langs
from polyfact.relations import RELATIONS, Relation, get_relation
from polyfact.answers import match, normalize, resolve_option

__all__ = [
    "LANGUAGES",
    "Language",
    "PolyFactError",
    "RELATIONS",
    "Relation",
    "get_language",
    "get_relation",
    "match",
    "normalize",
    "parse_langs",
    "resolve_option",
]
