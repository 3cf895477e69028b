// Trims a promptfoo result file to what the conformance test compares and
// what explains it, dropping what changes per run (ids, timestamps,
// absolute paths). A config promptfoo refuses becomes {"refused": why}.
//
//   node trim.mjs out.json eval.log exit-code
import { existsSync, readFileSync } from "node:fs";

const [outPath, logPath, rc] = process.argv.slice(2);
const firstLine = (s) => (typeof s === "string" ? s.split("\n")[0] : s);

if (!existsSync(outPath)) {
  const log = readFileSync(logPath, "utf8").split("\n").map((l) => l.trim());
  const why = log.find((l) => /error|invalid|failed/i.test(l)) ?? log.filter(Boolean).pop() ?? "";
  console.log(JSON.stringify({ promptfoo: "0.123.1", exitCode: Number(rc), refused: why }, null, 2));
  process.exit(0);
}
const file = JSON.parse(readFileSync(outPath, "utf8"));
const results = file.results.results
  .map((r) => ({
    promptIdx: r.promptIdx,
    testIdx: r.testIdx,
    provider: r.provider?.label || r.provider?.id,
    description: r.testCase?.description ?? null,
    vars: r.vars,
    output: r.response?.output ?? null,
    success: r.success,
    score: r.score,
    failureReason: r.failureReason,
    error: firstLine(r.error ?? null),
    namedScores: r.namedScores ?? {},
    gradingResult: r.gradingResult
      ? {
          pass: r.gradingResult.pass,
          score: r.gradingResult.score,
          reason: r.gradingResult.reason,
          componentResults: (r.gradingResult.componentResults ?? []).map((c) => ({
            pass: c.pass,
            score: c.score,
            reason: c.reason,
            type: c.assertion?.type ?? null,
          })),
        }
      : null,
  }))
  .sort((a, b) => a.testIdx - b.testIdx || a.promptIdx - b.promptIdx);
const out = {
  promptfoo: "0.123.1",
  exitCode: Number(rc),
  prompts: file.results.prompts.map((p) => ({ provider: p.provider, raw: p.raw })),
  stats: { successes: file.results.stats.successes, failures: file.results.stats.failures, errors: file.results.stats.errors },
  results,
};
console.log(JSON.stringify(out, null, 2));
