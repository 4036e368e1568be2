"""The paper's experiments: presets, the scales in params.yaml, where files live, the evaluation protocol,
references and verdicts, tables, figures and the notebooks' helpers."""
