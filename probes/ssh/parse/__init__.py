"""Pure parsers, one per command output. They raise only ``ParseError``."""
