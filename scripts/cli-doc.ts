// Prints docs/cli.md from the flag tables: bun scripts/cli-doc.ts > docs/cli.md
import { cliDoc } from "../src/cli/cli-doc.ts";

process.stdout.write(cliDoc());
