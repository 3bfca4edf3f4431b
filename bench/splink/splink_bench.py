"""Splink on the same gallery/probes as `verity bench resolve`, with the same metrics.

Setup (a reasonable Splink v4/v5 model, as its tutorials build one):
- link_only between probes and gallery; blocking for predictions on name and birth date
  (family name + first initial, given name + dob, dob + family initial) and on each identifier;
- comparisons: Jaro-Winkler for given/family names (term-frequency adjusted), middle name,
  DateOfBirthComparison, sex, country of birth (tf), Levenshtein<=1 on A-number and SSN, exact
  FBI number and passport, postcode and locality; exact FIN and state id when the files carry
  them (the default of `bench_resolve`; VERITY_BENCH_COLUMNS=16 leaves them out);
- u by random sampling (1e6 pairs, seed 1), m by EM on two blocking rules (names; dob),
  match rate estimated from deterministic identifier/name+dob rules with recall 0.7.
Metrics: FNIR at FPIR <= 1% and <= 0.1% over each probe's best candidate, pairwise
precision/recall/F1 at 0.5, hard negatives >= 0.5, and end-to-end time (CSV load to scored pairs).
"""
import json
import os
import sys
import time

import duckdb
import splink
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

d = sys.argv[1] if len(sys.argv) > 1 else "bench-out/resolve"
threads = os.cpu_count() or 1

t0 = time.perf_counter()
con = duckdb.connect()
cols = ["rec_id", "given_name", "middle_name", "family_name", "dob", "sex", "country_of_birth",
        "a_number", "passport", "fbi_number", "ssn", "street_number", "street", "locality", "postcode", "region"]
# the record systems' FIN and state id, when the benchmark files carry them
with open(f"{d}/gallery.csv") as f:
    header = f.readline().strip().split(",")
extra_ids = [c for c in ["fin", "state_id"] if c in header]
cols += extra_ids
sel = ", ".join(f"NULLIF(trim({c}), '') AS {c}" for c in cols)
for name in ["probes", "gallery"]:
    con.execute(f"CREATE TABLE {name} AS SELECT {sel} FROM read_csv('{d}/{name}.csv', all_varchar=true, header=true)")
db_api = DuckDBAPI(connection=con)
probes = db_api.register("probes", dataset_display_name="probes")
gallery = db_api.register("gallery", dataset_display_name="gallery")

settings = SettingsCreator(
    link_type="link_only",
    unique_id_column_name="rec_id",
    comparisons=[
        cl.JaroWinklerAtThresholds("given_name", [0.92, 0.8]).configure(term_frequency_adjustments=True),
        cl.JaroWinklerAtThresholds("family_name", [0.92, 0.8]).configure(term_frequency_adjustments=True),
        cl.JaroWinklerAtThresholds("middle_name", [0.9]),
        cl.DateOfBirthComparison("dob", input_is_string=True, datetime_format="%Y-%m-%d"),
        cl.ExactMatch("sex"),
        cl.ExactMatch("country_of_birth").configure(term_frequency_adjustments=True),
        cl.LevenshteinAtThresholds("a_number", [1]),
        cl.LevenshteinAtThresholds("ssn", [1]),
        cl.ExactMatch("fbi_number"),
        cl.ExactMatch("passport"),
        cl.ExactMatch("postcode"),
        cl.ExactMatch("locality"),
    ] + [cl.ExactMatch(c) for c in extra_ids],
    blocking_rules_to_generate_predictions=[
        block_on("family_name", "substr(given_name, 1, 1)"),
        block_on("given_name", "dob"),
        block_on("dob", "substr(family_name, 1, 1)"),
        block_on("a_number"),
        block_on("ssn"),
        block_on("fbi_number"),
        block_on("passport"),
    ] + [block_on(c) for c in extra_ids],
    retain_intermediate_calculation_columns=False,
)
linker = Linker([probes, gallery], settings, log_level=None)
linker.training.estimate_probability_two_random_records_match(
    ["l.a_number = r.a_number", "l.ssn = r.ssn"] + [f"l.{c} = r.{c}" for c in extra_ids] + [
     "l.given_name = r.given_name and l.family_name = r.family_name and l.dob = r.dob"],
    recall=0.7,
)
linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
linker.training.estimate_parameters_using_expectation_maximisation(block_on("given_name", "family_name"))
linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
t_train = time.perf_counter() - t0
pred = linker.inference.predict()
con.execute(f"CREATE TABLE splink_pairs AS SELECT * FROM {pred.physical_name}")
elapsed = time.perf_counter() - t0

# normalise sides: probe ids start with 'p', gallery ids with 'g'
con.execute("""
CREATE TABLE scored AS
SELECT CASE WHEN rec_id_l LIKE 'p%' THEN rec_id_l ELSE rec_id_r END AS probe,
       CASE WHEN rec_id_l LIKE 'p%' THEN rec_id_r ELSE rec_id_l END AS gallery,
       match_probability AS p, match_weight AS w
FROM splink_pairs""")
con.execute(f"CREATE TABLE truth AS SELECT probe_id, NULLIF(gallery_id, '') AS gallery_id, hard_negative = '1' AS hard FROM read_csv('{d}/truth.csv', all_varchar=true, header=true)")
n_pairs = con.execute("SELECT count(*) FROM scored").fetchone()[0]
# best candidate per probe (ties broken by gallery id), missing probes score -inf
rows = con.execute("""
WITH ranked AS (
  SELECT probe, gallery, w, p, row_number() OVER (PARTITION BY probe ORDER BY w DESC, gallery) AS rk FROM scored)
SELECT t.probe_id, t.gallery_id, t.hard, r.gallery, r.w, r.p
FROM truth t LEFT JOIN ranked r ON r.probe = t.probe_id AND r.rk = 1""").fetchall()

def fnir_at_fpir(rows, max_fpir):
    non = sorted([r[4] if r[4] is not None else float("-inf") for r in rows if r[1] is None], reverse=True)
    allowed = int(max_fpir * len(non))
    t = non[allowed] if allowed < len(non) else float("-inf")
    mated = [r for r in rows if r[1] is not None]
    miss = sum(1 for r in mated if not (r[3] == r[1] and r[4] is not None and r[4] > t))
    return miss / max(1, len(mated))

tp, fp = con.execute("""
SELECT count(*) FILTER (WHERE t.gallery_id = s.gallery), count(*) FILTER (WHERE t.gallery_id IS DISTINCT FROM s.gallery)
FROM scored s JOIN truth t ON t.probe_id = s.probe WHERE s.p >= 0.5""").fetchone()
mated = sum(1 for r in rows if r[1] is not None)
precision = tp / max(1, tp + fp)
recall = tp / max(1, mated)
f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
hard = [r for r in rows if r[2]]
hard_above = sum(1 for r in hard if r[5] is not None and r[5] >= 0.5)
res = {
    "tool": f"splink {splink.__version__} (duckdb {duckdb.__version__})",
    "columns": len(cols),
    "candidate_pairs": n_pairs,
    "precision": precision, "recall": recall, "f1": f1,
    "fnir_at_fpir_1pct": fnir_at_fpir(rows, 0.01),
    "fnir_at_fpir_01pct": fnir_at_fpir(rows, 0.001),
    "hard_negatives_above_half": hard_above, "hard_negatives": len(hard),
    "train_seconds": t_train, "end_to_end_link_seconds": elapsed, "threads": threads,
}
with open(f"{d}/splink_results.json", "w") as f:
    json.dump(res, f, indent=2)
print(f"{res['tool']} on {d}: {len(cols)} columns, {n_pairs} scored pairs, {threads} threads")
print(f"pairwise at 0.5: precision {precision:.4f} recall {recall:.4f} F1 {f1:.4f}")
print(f"FNIR at FPIR <= 1%: {res['fnir_at_fpir_1pct']:.4f}   at FPIR <= 0.1%: {res['fnir_at_fpir_01pct']:.4f}")
print(f"hard negatives >= 0.5: {hard_above} of {len(hard)}")
print(f"time: training {t_train:.2f}s, end to end (CSV load to scored pairs) {elapsed:.2f}s")

vpath = f"{d}/verity_results.json"
if os.path.exists(vpath):
    v = json.load(open(vpath))
    def ratio(a, b):
        return f"{a / b:.2f}x" if b else ("inf" if a else "n/a")
    print("\nside by side            verity      splink")
    for key, label in [("fnir_at_fpir_1pct", "FNIR @ FPIR<=1%"), ("fnir_at_fpir_01pct", "FNIR @ FPIR<=0.1%"),
                       ("f1", "F1 @ 0.5"), ("hard_negatives_above_half", "hard neg >= 0.5"),
                       ("end_to_end_link_seconds", "end-to-end s")]:
        print(f"{label:<20} {v[key]:>10.4f}  {res[key]:>10.4f}")
    print(f"FNIR ratio at FPIR<=1% (splink / verity): {ratio(res['fnir_at_fpir_1pct'], v['fnir_at_fpir_1pct'])}")
    print(f"speed ratio, batch linkage end to end (splink / verity): {ratio(res['end_to_end_link_seconds'], v['end_to_end_link_seconds'])}")
