"""Support for tests of ``common`` and of the papers (never imported by product code).

- ``losses``: naive loop references and inputs for testing contrastive losses;
- ``distributed``: 2-process gloo runs of gathered losses against the single-process loss;
- ``torchrun``: running a script under ``torchrun`` with 2 CPU processes;
- ``sentences``: tiny STS / wiki data, a tiny BERT, the SimCSE family's smoke run and budget;
- ``smoke``: what a paper's smoke recipes ask of the real data, against a budget;
- ``datasets``: every declared dataset; tiny generated datasets registered for a block.
"""
