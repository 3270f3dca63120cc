"""Regulated verse: tones and rhyme groups of characters, the sixteen patterns, and a checker."""

from tangrnn_core.prosody.tables import ProsodyTables, RhymeGroup, Tone, load_tables, to_traditional

__all__ = ["Tone", "RhymeGroup", "ProsodyTables", "load_tables", "to_traditional"]
