"""The optional statistical NER: a spaCy pipeline named in config (a package or a path,
never downloaded) finds the agent and agency when the signature rules do not.

No trained model ships with the tests; a pipeline with an entity ruler saved to a temporary
folder stands in for one: ``spacy.load`` reads it the same way, and the facts code sees
the same ``doc.ents``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import spacy

from classifiers.facts import FactExtractor
from classifiers.nlp import load_ner

LETTER = (
    "Please preserve the account @gulf_flipper for 90 days under 18 U.S.C. 2703(f).\n\n"
    "Regards,\n\n"
    "DANA WHITFIELD\n"
    "GULF COAST TASK FORCE\n"
    "dana.whitfield@fdle.example.gov\n"
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns(  # type: ignore[attr-defined]
        [
            {"label": "PERSON", "pattern": "DANA WHITFIELD"},
            {"label": "ORG", "pattern": "GULF COAST TASK FORCE"},
            {"label": "PERSON", "pattern": "gulf_flipper"},
        ]
    )
    path = tmp_path_factory.mktemp("ner") / "tiny_ner"
    nlp.to_disk(path)
    return path


def test_without_a_model_the_rules_alone_run() -> None:
    facts = FactExtractor().extract(LETTER, [], "dana.whitfield@fdle.example.gov")
    assert facts.agent_name is None  # an all-capitals line is not read as a name by rule


def test_a_configured_model_finds_the_agent_and_agency(model_dir: Path) -> None:
    extractor = FactExtractor(ner_model=str(model_dir))
    facts = extractor.extract(LETTER, [], "dana.whitfield@fdle.example.gov")
    assert facts.agent_name == "DANA WHITFIELD"
    assert facts.agency == "GULF COAST TASK FORCE"
    [name] = [f for f in facts.facts if f.kind == "agent_name"]
    assert (name.recognizer, name.pattern) == ("spacy_ner", "PERSON")
    assert LETTER[name.start : name.end] == name.raw
    # the model reads the signature only: the account holder is never an entity here
    assert "gulf_flipper" not in {f.value for f in facts.facts}


def test_a_missing_model_is_a_clear_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not an installed spaCy pipeline"):
        load_ner(str(tmp_path / "no_such_model"))


def test_a_pipeline_without_entities_is_refused(tmp_path: Path) -> None:
    spacy.blank("en").to_disk(tmp_path / "blank")
    with pytest.raises(ValueError, match="no entity recognizer"):
        load_ner(str(tmp_path / "blank"))
