"""A page request end to end: index lookup -> blocks -> decode -> trim -> resample -> encode -> send."""
