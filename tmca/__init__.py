"""TMCA: language-guided segmentation (arXiv 2412.13533) for tmcad.

Data side: ``phantoms`` / ``report_text`` (synthetic benchmark), ``tokenizer`` /
``vocab_build`` (WordPiece), ``preprocess`` (the Go-identical frame pipeline),
``datasets`` (QaTa-COV19 / MosMedData+ loaders), ``dicom_writer`` (phantom DICOM
studies) and ``vectors`` (shared Go/Python test vectors).
"""
