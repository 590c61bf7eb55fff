// Accessibility checks with axe-core, run in a page: what it finds serious or critical, as a list
// a test can assert is empty.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const source = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/**
 * axe-core's violations of impact "serious" or "critical" on the page as it is now (WCAG 2.1 A and
 * AA rules), each as `rule: target (summary)`.
 */
export async function seriousViolations(page) {
  await page.evaluate(source);
  const results = await page.evaluate(() =>
    window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }),
  );
  return results.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .flatMap((v) => v.nodes.map((n) => `${v.id}: ${n.target.join(" ")} (${n.failureSummary?.split("\n")[1]?.trim() ?? v.help})`));
}
