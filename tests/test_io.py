"""jaxlasso.io: reading expression matrices and sample sheets, aligning them (writing: test_output.py).

Every input file is written into ``tmp_path`` by the test itself (tiny: 6 samples x 10 genes, or
the simulator with 50 genes); only the npz round trip reads the shared real dataset.
"""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import real_data_path
from jaxlasso import io as jio
from jaxlasso.exceptions import DataWarning
from jaxlasso.io import InputError
from jaxlasso.simulate import simulate_rnaseq

SAMPLES = [f"S{i}" for i in range(1, 7)]
GENES = [f"G{j}" for j in range(1, 11)]


@pytest.fixture
def small() -> pd.DataFrame:
    """6 samples x 10 genes with non-integer values (samples in rows)."""
    values = np.arange(60, dtype=np.float64).reshape(6, 10) * 1.5 + 0.25
    return pd.DataFrame(values, index=SAMPLES, columns=GENES)


def gene_rows_text(df: pd.DataFrame, sep: str = "\t", first: str = "gene_id") -> str:
    """The table as genes-in-rows text (the default layout)."""
    lines = [sep.join([first] + list(df.index))]
    for g in df.columns:
        lines.append(sep.join([g] + [repr(float(v)) for v in df[g]]))
    return "\n".join(lines) + "\n"


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def assert_matrix(expr: jio.ExpressionData, df: pd.DataFrame) -> None:
    assert list(expr.matrix.index) == [str(s) for s in df.index]
    assert list(expr.matrix.columns) == [str(g) for g in df.columns]
    assert expr.matrix.dtypes.eq(np.float64).all()
    np.testing.assert_array_equal(expr.matrix.to_numpy(), df.to_numpy(dtype=np.float64))


def sheet_for(samples, groups) -> pd.DataFrame:
    return pd.DataFrame({"group": list(groups)}, index=pd.Index(list(samples), name="sample"))


# ---------------------------------------------------------------------------------------------
# formats


@pytest.mark.parametrize("name, sep, compress", [
    ("x.tsv", "\t", False), ("x.txt", "\t", False), ("x.csv", ",", False),
    ("x.tsv.gz", "\t", True), ("x.CSV.GZ", ",", True), ("x.TSV", "\t", False),
])
def test_text_round_trip_genes_in_rows(tmp_path, small, name, sep, compress):
    text = gene_rows_text(small, sep)
    path = tmp_path / name
    if compress:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        write(path, text)
    expr = jio.read_expression(path)
    assert expr.orientation == "genes_in_rows"
    assert "transposed to samples x genes" in expr.notes
    assert expr.source == str(path)
    assert expr.obs is None
    assert_matrix(expr, small)


def test_simulated_counts_round_trip(tmp_path):
    sim = simulate_rnaseq(n_genes=50)
    path = tmp_path / "counts.tsv"
    sim.counts.T.to_csv(path, sep="\t", index_label="gene_id")
    expr = jio.read_expression(path)
    assert_matrix(expr, sim.counts)


def test_parquet_round_trip(tmp_path, small):
    # genes in rows, gene IDs in the first (string) column
    small.T.reset_index(names="gene").to_parquet(tmp_path / "g.parquet")
    expr = jio.read_expression(tmp_path / "g.parquet")
    assert expr.orientation == "genes_in_rows"
    assert_matrix(expr, small)
    # samples in rows with the IDs in the stored index, detected from the sheet's IDs
    small.to_parquet(tmp_path / "s.parquet")
    expr = jio.read_expression(tmp_path / "s.parquet", sample_ids=SAMPLES)
    assert expr.orientation == "samples_in_rows"
    assert_matrix(expr, small)


def test_parquet_without_ids_and_with_text_columns(tmp_path, small):
    small.reset_index(drop=True).to_parquet(tmp_path / "noid.parquet")
    with pytest.raises(InputError, match=r"'noid.parquet' has no ID column.*index"):
        jio.read_expression(tmp_path / "noid.parquet")
    bad = small.T.copy()
    bad["S3"] = bad["S3"].astype(str)
    bad.to_parquet(tmp_path / "txt.parquet")
    with pytest.raises(InputError, match=r"non-numeric columns \['S3'\]"):
        jio.read_expression(tmp_path / "txt.parquet")


@pytest.mark.parametrize("sparse", [False, True])
def test_h5ad_round_trip(tmp_path, small, sparse):
    anndata = pytest.importorskip("anndata")
    X = small.to_numpy()
    if sparse:
        scipy_sparse = pytest.importorskip("scipy.sparse")
        X = scipy_sparse.csr_matrix(X)
    obs = pd.DataFrame({"group": ["a", "b"] * 3}, index=SAMPLES)
    adata = anndata.AnnData(X=X, obs=obs, var=pd.DataFrame(index=GENES))
    path = tmp_path / "x.h5ad"
    adata.write_h5ad(path)
    expr = jio.read_expression(path)
    assert expr.orientation == "samples_in_rows"
    assert_matrix(expr, small)
    assert ("densified sparse X" in expr.notes) == sparse
    assert list(expr.obs["group"]) == ["a", "b"] * 3
    aligned = jio.align_samples(expr, None, outcome="group", case="b")
    assert list(aligned.y) == ["a", "b"] * 3
    with pytest.raises(ValueError, match=r"AnnData.*fixed.*samples_in_rows=False"):
        jio.read_expression(path, samples_in_rows=False)


def test_npz_shared_dataset():
    tissue = real_data_path("tissue_cerebellum_vs_hippocampus")
    raw = np.load(tissue, allow_pickle=False)
    expr = jio.read_expression(tissue)
    assert expr.orientation == "samples_in_rows"
    assert expr.matrix.shape == raw["X"].shape == (69, 500)
    assert list(expr.matrix.index) == [str(s) for s in raw["samples"]]
    assert list(expr.matrix.columns) == [str(g) for g in raw["genes"]]
    np.testing.assert_array_equal(expr.matrix.to_numpy(), raw["X"].astype(np.float64))
    assert list(expr.obs["y"]) == list(raw["y"])
    assert any(n.startswith("description: dslabs") for n in expr.notes)
    aligned = jio.align_samples(expr, None, outcome="y")
    assert (aligned.case, aligned.control) == ("1", "0")
    assert "R's factor()" in aligned.case_reason
    np.testing.assert_array_equal(aligned.y01, raw["y"].astype(np.float64))


def test_npz_written_here(tmp_path, small):
    np.savez(tmp_path / "d.npz", X=small.to_numpy(np.float32), genes=np.array(GENES),
             samples=np.array(SAMPLES), y=np.array([0, 1] * 3))
    expr = jio.read_expression(tmp_path / "d.npz")
    assert_matrix(expr, small.astype(np.float32))
    assert list(expr.obs["y"]) == [0, 1] * 3


def test_load_npz_safely_refuses_object_arrays(tmp_path):
    np.savez(tmp_path / "obj.npz", X=np.zeros((2, 2)), genes=np.array(["a", None], dtype=object))
    with pytest.raises(InputError, match=r"'obj.npz'.*'genes'.*object arrays are not allowed"):
        jio.load_npz_safely(tmp_path / "obj.npz")
    np.save(tmp_path / "arr.npy", np.zeros(3))
    os.replace(tmp_path / "arr.npy", tmp_path / "arr.npz")
    with pytest.raises(InputError, match=r"single \.npy array"):
        jio.load_npz_safely(tmp_path / "arr.npz")
    write(tmp_path / "junk.npz", "not a zip")
    with pytest.raises(InputError, match=r"'junk.npz' is not a readable \.npz"):
        jio.read_expression(tmp_path / "junk.npz")
    np.savez(tmp_path / "mismatch.npz", X=np.zeros((3, 2)), genes=np.array(["a", "b", "c"]))
    with pytest.raises(InputError, match=r"'genes' has 3 entries but X has 2 columns"):
        jio.read_expression(tmp_path / "mismatch.npz")
    np.savez(tmp_path / "noX.npz", counts=np.zeros((3, 2)))
    with pytest.raises(InputError, match=r"no array 'X'.*\['counts'\]"):
        jio.read_expression(tmp_path / "noX.npz")


# ---------------------------------------------------------------------------------------------
# orientation


def test_samples_in_rows_detected_from_sample_ids(tmp_path, small):
    path = tmp_path / "s.tsv"
    small.to_csv(path, sep="\t", index_label="sample")
    expr = jio.read_expression(path, sample_ids=SAMPLES)
    assert expr.orientation == "samples_in_rows"
    assert any("samples in rows" in n for n in expr.notes)
    assert_matrix(expr, small)
    # a sample sheet DataFrame works as sample_ids too
    assert jio.read_expression(path, sample_ids=sheet_for(SAMPLES, "ab" * 3)).orientation == \
        "samples_in_rows"
    # genes-in-rows files stay genes in rows when the header holds the sample IDs
    path2 = write(tmp_path / "g.tsv", gene_rows_text(small))
    assert jio.read_expression(path2, sample_ids=SAMPLES).orientation == "genes_in_rows"


def test_orientation_forced(tmp_path, small):
    path = tmp_path / "s.tsv"
    small.to_csv(path, sep="\t")
    expr = jio.read_expression(path, samples_in_rows=True)
    assert expr.orientation == "samples_in_rows"
    assert_matrix(expr, small)
    wrong = jio.read_expression(path, samples_in_rows=False)  # read as asked: transposed
    assert list(wrong.matrix.index) == GENES
    with pytest.raises(TypeError, match=r"samples_in_rows must be True, False or None"):
        jio.read_expression(path, samples_in_rows="yes")


def test_samples_in_rows_detected_from_ensembl_header(tmp_path, small):
    df = small.copy()
    df.columns = [f"ENSG{j:011d}.3" for j in range(10)]
    df.to_csv(tmp_path / "e.csv")
    expr = jio.read_expression(tmp_path / "e.csv")
    assert expr.orientation == "samples_in_rows"
    assert_matrix(expr, df)


# ---------------------------------------------------------------------------------------------
# real-world text layouts


def test_featurecounts(tmp_path, small):
    lines = ['# Program:featureCounts v2.0.3; Command:"featureCounts" "-a" "genes.gtf" "-o" '
             '"counts.txt" "aln/S1.bam"',
             "\t".join(["Geneid", "Chr", "Start", "End", "Strand", "Length"]
                       + [f"/data/aln/{s}.bam" for s in SAMPLES])]
    counts = small.round().astype(int)
    for g in GENES:
        lines.append("\t".join([g, "chr1;chr1", "100;300", "200;400", "+;+", "201"]
                               + [str(v) for v in counts[g]]))
    path = write(tmp_path / "counts.txt", "\n".join(lines) + "\n")
    expr = jio.read_expression(path)
    assert_matrix(expr, counts)
    notes = " | ".join(expr.notes)
    assert "skipped 1 '#' comment line(s) (featureCounts)" in notes
    assert "dropped annotation columns ['Chr', 'Start', 'End', 'Strand', 'Length']" in notes
    assert "sample names shortened" in notes


def test_htseq_summary_rows_dropped(tmp_path, small):
    text = gene_rows_text(small) + "__no_feature\t1\t2\t3\t4\t5\t6\n__ambiguous\t0\t0\t0\t0\t0\t0\n"
    expr = jio.read_expression(write(tmp_path / "h.tsv", text))
    assert_matrix(expr, small)
    assert any("__no_feature" in n for n in expr.notes)


def geo_text(df: pd.DataFrame, *, end: bool = True) -> str:
    ids = [f"GSM{100 + i}" for i in range(len(df))]
    tissue = ["liver", "brain"] * (len(df) // 2)
    q = lambda v: f'"{v}"'  # noqa: E731
    lines = ['!Series_title\t"A study"', '!Series_geo_accession\t"GSE1"', "",
             "!Sample_title\t" + "\t".join(q(f"patient {i}") for i in range(len(df))),
             "!Sample_geo_accession\t" + "\t".join(q(i) for i in ids),
             "!Sample_characteristics_ch1\t" + "\t".join(q(f"tissue: {t}") for t in tissue),
             "!Sample_characteristics_ch1\t" + "\t".join(q(f"age: {40 + i}") for i in range(len(df))),
             "!series_matrix_table_begin",
             "\t".join([q("ID_REF")] + [q(i) for i in ids])]
    for g in df.columns:
        lines.append("\t".join([q(g)] + [repr(float(v)) for v in df[g]]))
    if end:
        lines.append("!series_matrix_table_end")
    return "\n".join(lines) + "\n"


def test_geo_series_matrix(tmp_path, small):
    path = tmp_path / "GSE1_series_matrix.txt.gz"
    path.write_bytes(gzip.compress(geo_text(small).encode()))
    expr = jio.read_expression(path)
    expected = small.copy()
    expected.index = [f"GSM{100 + i}" for i in range(6)]
    assert_matrix(expr, expected)
    assert "GEO series: A study" in expr.notes
    assert list(expr.obs["tissue"]) == ["liver", "brain"] * 3
    assert list(expr.obs["age"]) == [str(40 + i) for i in range(6)]
    assert list(expr.obs["title"])[0] == "patient 0"
    aligned = jio.align_samples(expr, None, outcome="tissue", case="liver")
    assert (aligned.case, aligned.control) == ("liver", "brain")
    assert aligned.case_reason == "given by the user"


def test_geo_series_matrix_truncated(tmp_path, small):
    path = write(tmp_path / "GSE1_series_matrix.txt", geo_text(small, end=False))
    with pytest.raises(InputError, match=r"no '!series_matrix_table_end'.*truncated"):
        jio.read_expression(path)
    path = write(tmp_path / "meta_only.txt", '!Series_title\t"x"\n!Sample_title\t"a"\n')
    with pytest.raises(InputError, match=r"no '!series_matrix_table_begin'"):
        jio.read_expression(path)


def test_bom_crlf_and_quotes(tmp_path, small):
    text = gene_rows_text(small, ",").replace("\n", "\r\n")
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    expr = jio.read_expression(path)
    assert_matrix(expr, small)
    assert "read UTF-8 BOM" in expr.notes
    assert "Windows CRLF line endings" in expr.notes
    # quoted IDs with the delimiter inside them, quoted numbers
    lines = ['"gene","sample, one","sample ""two"""', '"G1, long",1.5,"2"', '"G2",3,4']
    expr = jio.read_expression(write(tmp_path / "q.csv", "\n".join(lines) + "\n"))
    assert list(expr.matrix.index) == ["sample, one", 'sample "two"']
    assert list(expr.matrix.columns) == ["G1, long", "G2"]
    np.testing.assert_array_equal(expr.matrix.to_numpy(), [[1.5, 3.0], [2.0, 4.0]])


def test_utf16_excel_export(tmp_path, small):
    path = tmp_path / "excel.txt"
    path.write_bytes(gene_rows_text(small).encode("utf-16"))
    expr = jio.read_expression(path)
    assert_matrix(expr, small)
    assert any("UTF-16" in n for n in expr.notes)


@pytest.mark.parametrize("name, sep, note", [
    ("tabs.csv", "\t", "named .csv but tab-separated"),
    ("semi.csv", ";", "named .csv but semicolon-separated"),
    ("comma.tsv", ",", "named .tsv but comma-separated"),
])
def test_delimiter_sniffed(tmp_path, small, name, sep, note):
    expr = jio.read_expression(write(tmp_path / name, gene_rows_text(small, sep)))
    assert_matrix(expr, small)
    assert any(note in n for n in expr.notes)


def test_r_write_table_layouts(tmp_path, small):
    # write.table(x, sep="\t", quote=FALSE): header one field short
    text = gene_rows_text(small).split("\n", 1)
    short = "\t".join(SAMPLES) + "\n" + text[1]
    expr = jio.read_expression(write(tmp_path / "r.tsv", short))
    assert_matrix(expr, small)
    assert any("one field fewer" in n for n in expr.notes)
    # write.table(x) default: space-separated and quoted
    rows = [" ".join(f'"{s}"' for s in SAMPLES)]
    rows += [" ".join([f'"{g}"'] + [repr(float(v)) for v in small[g]]) for g in GENES]
    expr = jio.read_expression(write(tmp_path / "r.txt", "\n".join(rows) + "\n"))
    assert_matrix(expr, small)
    # write.csv(x): empty first header cell
    expr = jio.read_expression(write(tmp_path / "w.csv", gene_rows_text(small, ",", first='""')))
    assert_matrix(expr, small)


def test_header_starting_with_hash(tmp_path, small):
    text = "#" + gene_rows_text(small)
    expr = jio.read_expression(write(tmp_path / "h.tsv", text))
    assert_matrix(expr, small)
    assert "header line starts with '#'" in expr.notes
    # a '#' comment with as many fields as the header stays a comment
    text = "# made by\ta\tb\tc\td\te\tf\n" + gene_rows_text(small)
    expr = jio.read_expression(write(tmp_path / "c.tsv", text))
    assert_matrix(expr, small)
    assert "skipped 1 '#' comment line(s)" in expr.notes


def test_trailing_delimiters_and_blank_lines(tmp_path, small):
    text = gene_rows_text(small, ",").replace("\n", ",\n") + ",,,,,,,\n\n"
    expr = jio.read_expression(write(tmp_path / "t.csv", text))
    assert_matrix(expr, small)


# ---------------------------------------------------------------------------------------------
# errors while reading


def test_missing_file(tmp_path):
    write(tmp_path / "counts.tsv", "x")
    with pytest.raises(InputError, match=r"'.*count\.tsv' does not exist.*Similar names.*'counts\.tsv'"):
        jio.read_expression(tmp_path / "count.tsv")


@pytest.mark.parametrize("text, pattern", [
    ("", r"'e.tsv' is empty \(0 bytes\)"),
    ("\n\n  \n", r"'e.tsv' is empty"),
    ("# only a comment\n", r"'e.tsv' is empty.*# comment"),
    ("gene\tS1\tS2\n", r"'e.tsv' has a header \(line 1\) but no data rows"),
])
def test_empty_and_header_only(tmp_path, text, pattern):
    with pytest.raises(InputError, match=pattern):
        jio.read_expression(write(tmp_path / "e.tsv", text))


def test_ragged_row(tmp_path, small):
    lines = gene_rows_text(small).splitlines()
    lines[4] += "\t99"
    with pytest.raises(InputError, match=r"'r.tsv' line 5 has 8 fields but the header \(line 1\) "
                                         r"has 7.*\(got fields=8\)") as info:
        jio.read_expression(write(tmp_path / "r.tsv", "\n".join(lines) + "\n"))
    assert info.value.line == 5
    assert info.value.path == str(tmp_path / "r.tsv")
    lines = gene_rows_text(small).splitlines()
    lines[7] = lines[7].rsplit("\t", 2)[0]
    with pytest.raises(InputError, match=r"line 8 has 5 fields"):
        jio.read_expression(write(tmp_path / "r2.tsv", "\n".join(lines) + "\n"))


def test_duplicated_gene_ids(tmp_path, small):
    lines = gene_rows_text(small).splitlines()
    lines[5] = lines[5].replace("G5", "G2", 1)
    with pytest.raises(InputError, match=r"1 duplicated gene ID\(s\) in the first column: 'G2' "
                                         r"at line 3 and line 6.*\(got duplicates=\['G2'\]\)"):
        jio.read_expression(write(tmp_path / "d.tsv", "\n".join(lines) + "\n"))


def test_duplicated_sample_ids(tmp_path, small):
    lines = gene_rows_text(small).splitlines()
    lines[0] = lines[0].replace("S4", "S2")
    with pytest.raises(InputError, match=r"duplicated sample ID\(s\) in the header: 'S2' at "
                                         r"column 3 of the header \(line 1\) and column 5"):
        jio.read_expression(write(tmp_path / "d.tsv", "\n".join(lines) + "\n"))
    # samples in rows: the first column holds the sample IDs
    df = small.copy()
    df.index = ["S1", "S2", "S1", "S4", "S5", "S6"]
    df.to_csv(tmp_path / "s.tsv", sep="\t")
    with pytest.raises(InputError, match=r"duplicated sample ID\(s\) in the first column: 'S1' "
                                         r"at line 2 and line 4"):
        jio.read_expression(tmp_path / "s.tsv", samples_in_rows=True)


def test_empty_id(tmp_path, small):
    lines = gene_rows_text(small).splitlines()
    lines[3] = "\t" + lines[3].split("\t", 1)[1]
    with pytest.raises(InputError, match=r"1 empty gene ID\(s\) in the first column, first at line 4"):
        jio.read_expression(write(tmp_path / "e.tsv", "\n".join(lines) + "\n"))


@pytest.mark.parametrize("raw, kind, hint", [
    ("NA", "missing-value marker", r"impute"),
    ("NaN", "missing-value marker", r"impute"),
    ("1,5", "decimal comma", r"decimal point"),
    ("\u2014", "missing-value marker", r"impute"),
    ("abc", "not a number", r"text in a number cell"),
    ("", "empty", r"empty cells are missing values"),
    ("Inf", "infinite", r"log\(x \+ 1\)"),
    ("-1e999", "infinite", r"log\(x \+ 1\)"),
])
def test_non_numeric_cells(tmp_path, small, raw, kind, hint):
    lines = gene_rows_text(small).splitlines()
    fields = lines[3].split("\t")  # gene G3, line 4
    fields[2] = raw  # sample S2, column 3
    lines[3] = "\t".join(fields)
    path = write(tmp_path / "n.tsv", "\n".join(lines) + "\n")
    pattern = (rf"'n.tsv' has 1 of 60 value cells that are not finite numbers.*line 4, column 3, "
               rf"gene 'G3', sample 'S2': {raw!r} \({kind}\).*{hint}")
    with pytest.raises(InputError, match=pattern) as info:
        jio.read_expression(path)
    assert (info.value.line, info.value.column) == (4, 3)
    assert str(info.value).endswith(f"(got value={raw!r})")


def test_many_bad_cells_reported_with_counts(tmp_path, small):
    df = small.T.astype(object)
    df["S2"] = "NA"
    df.loc["G4", "S5"] = "n/a"
    df.loc["G9", "S6"] = "inf"
    df.to_csv(tmp_path / "m.tsv", sep="\t")
    with pytest.raises(InputError, match=r"'m.tsv' has 12 of 60 value cells that are not finite "
                                         r"numbers \(11 missing-value marker, 1 infinite\)\. First: "
                                         r"line 2, column 3, gene 'G1', sample 'S2': 'NA'.*"
                                         r"impute.*log\(x \+ 1\)"):
        jio.read_expression(tmp_path / "m.tsv")


def test_bad_cells_samples_in_rows_names_gene_and_sample(tmp_path, small):
    df = small.astype(object)
    df.loc["S5", "G7"] = "NA"
    df.to_csv(tmp_path / "s.tsv", sep="\t")
    with pytest.raises(InputError, match=r"line 6, column 8, gene 'G7', sample 'S5': 'NA'"):
        jio.read_expression(tmp_path / "s.tsv", samples_in_rows=True)


def test_nan_in_binary_formats(tmp_path, small):
    df = small.copy()
    df.loc["S3", "G4"] = np.nan
    df.loc["S6", "G1"] = np.inf
    np.savez(tmp_path / "n.npz", X=df.to_numpy(), genes=np.array(GENES), samples=np.array(SAMPLES))
    with pytest.raises(InputError, match=r"2 of 60.*gene 'G4', sample 'S3': 'nan'.*"
                                         r"gene 'G1', sample 'S6': 'inf'"):
        jio.read_expression(tmp_path / "n.npz")
    df.T.reset_index(names="gene").to_parquet(tmp_path / "n.parquet")
    with pytest.raises(InputError, match=r"gene 'G4', sample 'S3'"):
        jio.read_expression(tmp_path / "n.parquet")


def test_truncated_gzip(tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(2000, 6)), columns=SAMPLES,
                      index=[f"G{j}" for j in range(2000)])
    data = gzip.compress(df.to_csv(sep="\t").encode())
    path = tmp_path / "cut.tsv.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"'cut.tsv.gz' is a corrupt or truncated gzip file"):
        jio.read_expression(path)
    path.write_bytes(data[:30])  # fails while sniffing the first bytes
    with pytest.raises(InputError, match=r"corrupt or truncated gzip.*gzip -t"):
        jio.read_expression(path)


def test_plain_file_named_gz_and_gzip_named_tsv(tmp_path, small):
    expr = jio.read_expression(write(tmp_path / "plain.tsv.gz", gene_rows_text(small)))
    assert_matrix(expr, small)
    assert any("not gzip-compressed" in n for n in expr.notes)
    (tmp_path / "zipped.tsv").write_bytes(gzip.compress(gene_rows_text(small).encode()))
    expr = jio.read_expression(tmp_path / "zipped.tsv")
    assert_matrix(expr, small)
    assert any("gzip-compressed although" in n for n in expr.notes)


@pytest.mark.parametrize("content, pattern", [
    (b"PK\x03\x04" + b"\x00" * 100, r"not a text table.*Excel"),
    (b"\x89HDF\r\n\x1a\n" + b"\x00" * 100, r"not a text table.*HDF5.*\.h5ad"),
    (bytes(range(256)) * 4, r"not a text table.*binary data"),
])
def test_binary_file(tmp_path, content, pattern):
    (tmp_path / "b.tsv").write_bytes(content)
    with pytest.raises(InputError, match=pattern):
        jio.read_expression(tmp_path / "b.tsv")


def test_single_column_wrong_delimiter(tmp_path, small):
    text = gene_rows_text(small, "|")
    with pytest.raises(InputError, match=r"only one column was found in 'p.csv' \(header at line "
                                         r"1\); is the delimiter.*'\|'"):
        jio.read_expression(write(tmp_path / "p.csv", text))


def test_latin1_fallback(tmp_path, small):
    text = gene_rows_text(small).replace("G1\t", "G\xe91\t", 1)
    expr = jio.read_expression(write(tmp_path / "l.tsv", text, encoding="latin-1"))
    assert "G\xe91" in expr.matrix.columns
    assert any("Latin-1" in n for n in expr.notes)


def test_max_bytes(tmp_path, small):
    path = write(tmp_path / "big.tsv", gene_rows_text(small))
    with pytest.raises(InputError, match=r"'big.tsv' is \d+ bytes, more than the 100 bytes "
                                         r"limit.*max_bytes="):
        jio.read_expression(path, max_bytes=100)
    # the limit also applies to decompressed text
    gz = tmp_path / "big.tsv.gz"
    gz.write_bytes(gzip.compress(("0" * 5000 + "\n").encode() * 20))
    assert gz.stat().st_size < 1000
    with pytest.raises(InputError, match=r"more than 1000 bytes of text once decompressed"):
        jio.read_expression(gz, max_bytes=1000)


def test_unsupported_extension(tmp_path):
    write(tmp_path / "x.xlsx", "x")
    with pytest.raises(InputError, match=r"unsupported extension '.xlsx'; supported.*Excel"):
        jio.read_expression(tmp_path / "x.xlsx")


def test_input_error_is_value_error():
    assert issubclass(InputError, ValueError)


# ---------------------------------------------------------------------------------------------
# sample sheets


def test_read_sample_sheet_auto_id(tmp_path):
    sim = simulate_rnaseq(n_genes=50)
    sim.samples.to_csv(tmp_path / "sheet.csv", index=False)
    sheet = jio.read_sample_sheet(tmp_path / "sheet.csv")
    assert sheet.index.name == "sample"
    assert list(sheet.index) == list(sim.samples["sample"])
    assert list(sheet["group"]) == list(sim.samples["group"])
    assert sheet.attrs["id_column"] == "sample"


def test_read_sample_sheet_variants(tmp_path):
    text = "\ufeffRun\tcondition\tbatch\r\nS1\tA\t1\r\nS2\tB\tNA\r\nS3\tA\t\r\n"
    sheet = jio.read_sample_sheet(write(tmp_path / "s.tsv", text))
    assert list(sheet.index) == ["S1", "S2", "S3"]
    assert sheet.index.name == "Run"
    assert sheet["batch"].isna().tolist() == [False, True, True]
    # no conventional name: first column with unique non-numeric values
    text = "age,patient,group\n40,p1,a\n40,p2,b\n"
    sheet = jio.read_sample_sheet(write(tmp_path / "p.csv", text))
    assert sheet.attrs["id_column"] == "patient"
    # explicit
    sheet = jio.read_sample_sheet(write(tmp_path / "e.csv", text), id_column="group")
    assert list(sheet.index) == ["a", "b"]


def test_read_sample_sheet_errors(tmp_path):
    path = write(tmp_path / "s.csv", "sample,group\nS1,a\nS2,b\nS1,b\n")
    with pytest.raises(InputError, match=r"1 duplicated sample ID\(s\) in column 'sample': 'S1' "
                                         r"at lines 2 and 4"):
        jio.read_sample_sheet(path)
    with pytest.raises(InputError, match=r"no column 'sampel'.*\['sample', 'group'\].*Did you "
                                         r"mean \['sample'\]"):
        jio.read_sample_sheet(write(tmp_path / "ok.csv", "sample,group\nS1,a\n"), id_column="sampel")
    with pytest.raises(InputError, match=r"sample sheet 'empty.tsv' is empty"):
        jio.read_sample_sheet(write(tmp_path / "empty.tsv", "\n"))
    with pytest.raises(InputError, match=r"header \(line 1\) but no sample rows"):
        jio.read_sample_sheet(write(tmp_path / "h.tsv", "sample\tgroup\n"))
    with pytest.raises(InputError, match=r"could not find the sample ID column.*id_column="):
        jio.read_sample_sheet(write(tmp_path / "n.csv", "group,batch\na,1\na,1\n"))
    with pytest.raises(InputError, match=r"does not exist"):
        jio.read_sample_sheet(tmp_path / "nope.csv")
    with pytest.raises(InputError, match=r"line 3 has 4 fields but the header \(line 1\) has 2"):
        jio.read_sample_sheet(write(tmp_path / "r.csv", "sample,group\nS1,a\nS2,b,c,d\n"))
    with pytest.raises(InputError, match=r"duplicated column names \['group'\]"):
        jio.read_sample_sheet(write(tmp_path / "d.csv", "sample,group,group\nS1,a,b\n"))


# ---------------------------------------------------------------------------------------------
# alignment


@pytest.fixture
def expr(tmp_path, small) -> jio.ExpressionData:
    return jio.read_expression(write(tmp_path / "x.tsv", gene_rows_text(small)))


def test_align_orders_like_matrix(expr):
    sheet = sheet_for(SAMPLES[::-1], ["tumour", "normal"] * 3)  # reversed order
    aligned = jio.align_samples(expr, sheet, outcome="group", case="tumour")
    assert list(aligned.X.index) == SAMPLES
    assert list(aligned.y.index) == SAMPLES
    assert list(aligned.y) == ["normal", "tumour"] * 3
    np.testing.assert_array_equal(aligned.y01, [0, 1] * 3)
    assert aligned.X.equals(expr.matrix)
    assert (aligned.case, aligned.control, aligned.case_reason) == ("tumour", "normal",
                                                                    "given by the user")
    assert aligned.missing_in_sheet == aligned.missing_in_matrix == ()


def test_align_default_case_is_second_sorted_level(expr):
    aligned = jio.align_samples(expr, sheet_for(SAMPLES, ["resp", "nonresp"] * 3), outcome="group")
    assert (aligned.case, aligned.control) == ("resp", "nonresp")
    assert aligned.case_reason == ("second level in sorted order, as R's factor() and glmnet "
                                   "choose it")
    # numeric levels sort numerically, as R's factor() sorts numbers
    aligned = jio.align_samples(expr, sheet_for(SAMPLES, [2, 10] * 3), outcome="group")
    assert aligned.case == "10"
    assert "numeric order" in aligned.case_reason


def test_align_warns_when_auto_case_looks_like_control(expr):
    sheet = sheet_for(SAMPLES, ["case", "control"] * 3)
    with pytest.warns(DataWarning, match=r"chosen automatically as 'control'.*case='case'"):
        aligned = jio.align_samples(expr, sheet, outcome="group")
    assert aligned.case == "control"


def test_align_outcome_errors(expr):
    sheet = sheet_for(SAMPLES, ["a", "b"] * 3)
    with pytest.raises(ValueError, match=r"no outcome column 'Group'.*\['group'\].*Did you mean"):
        jio.align_samples(expr, sheet, outcome="Group")
    with pytest.raises(ValueError, match=r"exactly two levels but has only one level among the 6 "
                                         r"matched samples: 'a' \(6\)"):
        jio.align_samples(expr, sheet_for(SAMPLES, ["a"] * 6), outcome="group")
    with pytest.raises(ValueError, match=r"has 3 levels.*'a' \(2\), 'b' \(2\), 'c' \(2\).*filter"):
        jio.align_samples(expr, sheet_for(SAMPLES, ["a", "b", "c"] * 2), outcome="group")
    with pytest.raises(ValueError, match=r"case='x' is not a level.*'a' \(3\), 'b' \(3\)"):
        jio.align_samples(expr, sheet, outcome="group", case="x")


def test_align_missing_outcome(expr):
    sheet = sheet_for(SAMPLES, ["a", "b", None, "b", "", "a"])
    with pytest.raises(ValueError, match=r"outcome 'group' is missing for 2 sample\(s\): "
                                         r"\['S3', 'S5'\].*allow_missing"):
        jio.align_samples(expr, sheet, outcome="group")
    aligned = jio.align_samples(expr, sheet, outcome="group", allow_missing=True)
    assert aligned.dropped_missing_outcome == ("S3", "S5")
    assert list(aligned.X.index) == ["S1", "S2", "S4", "S6"]


def test_align_unmatched_samples(expr):
    sheet = sheet_for(SAMPLES[:4] + ["S9"], ["a", "b", "a", "b", "a"])
    with pytest.raises(ValueError, match=r"2 sample\(s\) of 'x.tsv' are not in the sample sheet: "
                                         r"\['S5', 'S6'\]; 1 sample\(s\) of the sample sheet are "
                                         r"not in 'x.tsv': \['S9'\] \(4 match\)"):
        jio.align_samples(expr, sheet, outcome="group")
    aligned = jio.align_samples(expr, sheet, outcome="group", allow_missing=True, case="b")
    assert aligned.missing_in_sheet == ("S5", "S6")
    assert aligned.missing_in_matrix == ("S9",)
    assert list(aligned.X.index) == SAMPLES[:4]


def test_align_no_overlap_hints_orientation(tmp_path, small):
    transposed = jio.read_expression(write(tmp_path / "g.tsv", gene_rows_text(small)),
                                     samples_in_rows=True)
    with pytest.raises(ValueError, match=r"match nothing.*matrix samples are \['G1', 'G2', 'G3', "
                                         r".*sheet IDs are \['S1'.*transposed.*--samples-in-rows"):
        jio.align_samples(transposed, sheet_for(SAMPLES, "ab" * 3), outcome="group")
    expr = jio.read_expression(tmp_path / "g.tsv")
    with pytest.raises(ValueError, match=r"match nothing.*case, spaces and punctuation"):
        jio.align_samples(expr, sheet_for([s.lower() for s in SAMPLES], "ab" * 3), outcome="group")


def test_align_sheet_none(expr, tmp_path, small):
    with pytest.raises(ValueError, match=r"no sample sheet was given and 'x.tsv' carries no "
                                         r"sample annotations"):
        jio.align_samples(expr, None, outcome="group")
    np.savez(tmp_path / "d.npz", X=small.to_numpy(), samples=np.array(SAMPLES),
             genes=np.array(GENES), y=np.array([0, 1] * 3))
    npz = jio.read_expression(tmp_path / "d.npz")
    with pytest.raises(ValueError, match=r"annotations \(obs\) of 'd.npz' has no outcome column "
                                         r"'group'.*\['y'\]"):
        jio.align_samples(npz, None, outcome="group")


# ---------------------------------------------------------------------------------------------
# names stored as bytes, complex values, NUL bytes, huge values, corrupt gzip, ID mismatches;
# each refused by the CLI with exit status 2, one "error:" line, and nothing written


def run_cli_refused(args, capsys, tmp_path, pattern) -> str:
    """Run ``jaxlasso select ... --out tmp_path/res``: exit 2, one ``error:`` line matching
    ``pattern``, no output directory, and every file under ``tmp_path`` unchanged."""
    from jaxlasso.cli import main

    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.rglob("*") if p.is_file()}
    out = tmp_path / "res"
    code = main([str(a) for a in args] + ["--out", str(out), "--quiet", "--no-plots"])
    _, err = capsys.readouterr()
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert re.search(pattern, lines[0]), lines[0]
    assert not out.exists()
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before, "a refused run must not write or change any file"
    return lines[0]


def npz_study(path: Path, *, X=None, genes=None, samples=None, y=None) -> Path:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 5)) if X is None else X
    samples = np.array([f"S{i}" for i in range(X.shape[0])]) if samples is None else samples
    genes = np.array([f"G{j}" for j in range(X.shape[1])]) if genes is None else genes
    y = np.array(["a", "b"] * (X.shape[0] // 2)) if y is None else y
    np.savez(path, X=X, genes=genes, samples=samples, y=y)
    return path


def test_npz_bytes_names_are_decoded(tmp_path):
    genes = np.array([b"KCTD2", "\u00e9GFR".encode(), b"G3", b"G4", b"G5"], dtype="S")
    samples = np.array([f"S{i}".encode() for i in range(8)], dtype="S")
    path = npz_study(tmp_path / "b.npz", genes=genes, samples=samples,
                     y=np.array([b"ctrl", b"case"] * 4, dtype="S"))
    expr = jio.read_expression(path)
    assert list(expr.matrix.columns) == ["KCTD2", "\u00e9GFR", "G3", "G4", "G5"]
    assert list(expr.matrix.index) == [f"S{i}" for i in range(8)]
    assert sorted(set(expr.obs["y"])) == ["case", "ctrl"]
    aligned = jio.align_samples(expr, None, outcome="y", case="case")
    assert aligned.case == "case" and aligned.control == "ctrl"


def test_npz_names_not_utf8(tmp_path):
    genes = np.array([b"G1", b"G\xff2", b"G3", b"G4", b"G5"], dtype="S")
    path = npz_study(tmp_path / "b.npz", genes=genes)
    with pytest.raises(InputError, match=r"'b.npz': array 'genes' entry 1 is not valid UTF-8"):
        jio.read_expression(path)


def test_complex_inputs_refused(tmp_path, small, capsys):
    rng = np.random.default_rng(0)
    path = npz_study(tmp_path / "c.npz", X=rng.normal(size=(8, 5)) + 1j)
    with pytest.raises(InputError, match=r"'c.npz': array 'X' holds complex numbers"):
        jio.read_expression(path)
    run_cli_refused(["select", path, "--outcome", "y"], capsys, tmp_path,
                    r"'c.npz': array 'X' holds complex numbers")
    anndata = pytest.importorskip("anndata")
    anndata.AnnData(small.to_numpy() + 1j,
                    obs=pd.DataFrame(index=list(small.index)),
                    var=pd.DataFrame(index=list(small.columns))).write_h5ad(tmp_path / "c.h5ad")
    with pytest.raises(InputError, match=r"'c.h5ad': X holds complex numbers"):
        jio.read_expression(tmp_path / "c.h5ad")


def test_parquet_binary_ids_are_decoded(tmp_path, small):
    pytest.importorskip("pyarrow")
    df = small.T.copy()
    df.index = [g.encode() for g in df.index]
    df.to_parquet(tmp_path / "b.parquet")
    expr = jio.read_expression(tmp_path / "b.parquet")
    assert list(expr.matrix.columns) == GENES


def test_nul_in_names_refused(tmp_path, small, capsys):
    # npz gene name
    genes = np.array(["G1", "G\x002", "G3", "G4", "G5"])
    with pytest.raises(InputError, match=r"gene ID\(s\) in 'genes' holding a NUL byte, first "
                                         r"at genes\[1\]"):
        jio.read_expression(npz_study(tmp_path / "n.npz", genes=genes))
    # npz outcome level
    with pytest.raises(InputError, match=r"outcome label y\[3\] holds a NUL byte"):
        jio.read_expression(npz_study(tmp_path / "y.npz", y=np.array(["a", "b", "a", "b\x00x"] * 2)))
    # text matrix: a gene in the first 8 KiB and one far beyond it
    lines = gene_rows_text(small).splitlines()
    early = lines.copy()
    early[3] = "G\x00" + early[3][1:]
    write(tmp_path / "early.tsv", "\n".join(early) + "\n")
    with pytest.raises(InputError, match=r"expression file 'early.tsv' line 4 holds a NUL byte"):
        jio.read_expression(tmp_path / "early.tsv")
    filler = [f"F{j}\t" + "\t".join(["1.0"] * 6) for j in range(2000)]
    late = lines[:1] + filler + ["G\x00x\t" + "\t".join(["1.0"] * 6)]
    write(tmp_path / "late.tsv", "\n".join(late) + "\n")
    with pytest.raises(InputError, match=r"'late.tsv' has 1 gene ID\(s\) in the first column "
                                         r"holding a NUL byte, first at line 2002"):
        jio.read_expression(tmp_path / "late.tsv")
    # sample sheet: an ID and an outcome level
    write(tmp_path / "counts.tsv", gene_rows_text(small))
    write(tmp_path / "s1.tsv", "sample\tgroup\n" + "".join(
        f"{s}{chr(0) if i == 2 else ''}\t{'ab'[i % 2]}\n" for i, s in enumerate(SAMPLES)))
    with pytest.raises(InputError, match=r"sample sheet 's1.tsv' line 4 holds a NUL byte"):
        jio.read_sample_sheet(tmp_path / "s1.tsv")
    write(tmp_path / "s2.tsv", "sample\tgroup\n" + "".join(
        f"{s}\t{'ab'[i % 2]}{chr(0) if i == 5 else ''}\n" for i, s in enumerate(SAMPLES)))
    run_cli_refused(["select", tmp_path / "counts.tsv", "--samples", tmp_path / "s2.tsv",
                     "--outcome", "group"], capsys, tmp_path,
                    r"sample sheet 's2.tsv' line 7 holds a NUL byte")
    # a sheet handed to align_samples through the API
    expr = jio.read_expression(tmp_path / "counts.tsv")
    sheet = sheet_for(SAMPLES, ["a", "b", "a", "b", "a", "b\x00"])
    with pytest.raises(ValueError, match=r"outcome 'group' value 'b\\x00' \(row 6\) holds a NUL"):
        jio.align_samples(expr, sheet, outcome="group")


def test_huge_value_named_with_file_gene_and_sample(tmp_path, small, capsys):
    bad = small.copy()
    bad.loc["S3", "G4"] = 1e308
    write(tmp_path / "h.tsv", gene_rows_text(bad))
    pattern = (r"'h.tsv' has 1 of 60 value cells that are not finite numbers of a usable size "
               r"\(1 too large\)\. First: line 5, column 4, gene 'G4', sample 'S3': '1e\+308'")
    with pytest.raises(InputError, match=pattern):
        jio.read_expression(tmp_path / "h.tsv")
    write(tmp_path / "s.tsv", "sample\tgroup\n" + "".join(
        f"{s}\t{'ab'[i % 2]}\n" for i, s in enumerate(SAMPLES)))
    run_cli_refused(["select", tmp_path / "h.tsv", "--samples", tmp_path / "s.tsv",
                     "--outcome", "group"], capsys, tmp_path, pattern)
    X = np.ones((8, 5))
    X[6, 1] = -1e200
    with pytest.raises(InputError, match=r"gene 'G1', sample 'S6': '-1e\+200' \(too large\)"):
        jio.read_expression(npz_study(tmp_path / "h.npz", X=X))


def corrupt_gzip_mid_stream(path: Path, small: pd.DataFrame) -> bytes:
    """A gzip of ~2000 genes with one flipped byte in the middle of the deflate stream: zlib
    decodes garbage for a while (a ragged line) before it notices."""
    rng = np.random.default_rng(1)
    big = pd.DataFrame(rng.integers(0, 1000, size=(6, 3000)), index=SAMPLES,
                       columns=[f"G{j}" for j in range(3000)])
    data = bytearray(gzip.compress(gene_rows_text(big).encode()))
    data[len(data) // 3] ^= 0xFF
    data[len(data) // 3 + 1] ^= 0x55
    path.write_bytes(bytes(data))
    return bytes(data)


def test_gzip_corrupt_mid_stream_is_a_corrupt_file(tmp_path, small, capsys):
    path = tmp_path / "m.tsv.gz"
    corrupt_gzip_mid_stream(path, small)
    with pytest.raises(InputError) as info:
        jio.read_expression(path)
    msg = str(info.value)
    assert msg.startswith("'m.tsv.gz' is a corrupt or truncated gzip file"), msg
    assert re.search(r"it breaks (within compressed bytes [\d,]+-[\d,]+|at its end).*"
                     r"at decompressed line \d+", msg), msg
    write(tmp_path / "s.tsv", "sample\tgroup\n" + "".join(
        f"{s}\t{'ab'[i % 2]}\n" for i, s in enumerate(SAMPLES)))
    run_cli_refused(["select", path, "--samples", tmp_path / "s.tsv", "--outcome", "group"],
                    capsys, tmp_path, r"'m.tsv.gz' is a corrupt or truncated gzip file")


def test_gzip_fault_locates_the_break(tmp_path):
    text = "".join(f"line {i}\n" for i in range(50000)).encode()
    data = gzip.compress(text)
    (tmp_path / "ok.gz").write_bytes(data + gzip.compress(b"second member\n") + b"\x00" * 8)
    assert jio._gzip_fault(tmp_path / "ok.gz") is None
    (tmp_path / "cut.gz").write_bytes(data[:1000])
    offset, line, what = jio._gzip_fault(tmp_path / "cut.gz")
    assert offset == 1000 and "truncated" in what and 1 < line < 50000
    broken = bytearray(data)
    broken[100] ^= 0xFF
    (tmp_path / "bad.gz").write_bytes(bytes(broken))
    offset, line, what = jio._gzip_fault(tmp_path / "bad.gz")
    assert offset < len(data) and what


def test_outcome_is_the_id_column(tmp_path, small, capsys):
    write(tmp_path / "counts.tsv", gene_rows_text(small))
    write(tmp_path / "s.tsv", "sample\tgroup\n" + "".join(
        f"{s}\t{'ab'[i % 2]}\n" for i, s in enumerate(SAMPLES)))
    expected = (r"column 'sample' is the sample-ID column of sample sheet 's.tsv'; the outcome "
                r"must be another column: \['group'\]")
    expr = jio.read_expression(tmp_path / "counts.tsv")
    with pytest.raises(ValueError, match=expected):
        jio.align_samples(expr, jio.read_sample_sheet(tmp_path / "s.tsv"), outcome="sample")
    run_cli_refused(["select", tmp_path / "counts.tsv", "--samples", tmp_path / "s.tsv",
                     "--outcome", "sample"], capsys, tmp_path, expected)


@pytest.mark.parametrize("n_zeroed", [6, 2])
def test_leading_zero_ids_named_with_the_fix(tmp_path, small, capsys, n_zeroed):
    ids = [f"{i:03d}" for i in range(1, 7)]  # 001 .. 006 in the matrix
    write(tmp_path / "counts.tsv", gene_rows_text(small.set_axis(ids, axis=0)))
    sheet_ids = [str(int(s)) if k < n_zeroed else s for k, s in enumerate(ids)]
    write(tmp_path / "s.tsv", "sample\tgroup\n" + "".join(
        f"{s}\t{'ab'[i % 2]}\n" for i, s in enumerate(sheet_ids)))
    pattern = (rf"{n_zeroed} sample ID\(s\) differ only by leading zeros \('counts.tsv' vs "
               rf"sample sheet 's.tsv': '001' vs '1', '002' vs '2'.*Excel.*format the ID column "
               rf"as Text")
    expr = jio.read_expression(tmp_path / "counts.tsv")
    with pytest.raises(ValueError, match=pattern):
        jio.align_samples(expr, jio.read_sample_sheet(tmp_path / "s.tsv"), outcome="group")
    run_cli_refused(["select", tmp_path / "counts.tsv", "--samples", tmp_path / "s.tsv",
                     "--outcome", "group"], capsys, tmp_path, pattern)


def test_text_rows_across_read_blocks(tmp_path):
    # Rows are gathered in blocks of 4,096: a table of 9,000 genes spans three blocks.
    rng = np.random.default_rng(5)
    df = pd.DataFrame(rng.integers(0, 10**6, size=(6, 9000)).astype(float), index=SAMPLES,
                      columns=[f"G{j}" for j in range(9000)])
    (tmp_path / "big.tsv.gz").write_bytes(gzip.compress(gene_rows_text(df).encode()))
    assert_matrix(jio.read_expression(tmp_path / "big.tsv.gz"), df)
    rows = jio._RowBlocks(block=3)
    for i in range(7):
        rows.append(np.full(2, float(i)))
    assert len(rows) == 7
    np.testing.assert_array_equal(rows.stack(), np.repeat(np.arange(7.0), 2).reshape(7, 2))
