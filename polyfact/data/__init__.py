"""PolyFact: the dataset layer (languages, relations, sources, questions, splits, answer matching).

Nothing here touches a model. Public entry points::

    from polyfact.data import LANGUAGES, RELATIONS, build_dataset, load_dataset_dir, match
"""

from polyfact.core.errors import PolyFactError
from polyfact.data.languages import LANGUAGES, Language, get_language, parse_langs
from polyfact.data.relations import RELATIONS, Relation, get_relation
from polyfact.data.answers import match, normalize, resolve_option

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
