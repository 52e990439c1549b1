"""Coverage census (两个覆盖): entities, registry import, rounds, surveys, coverage."""
