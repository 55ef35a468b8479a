/**
 * `npm run keys -- new <name> [--models a,b]`: makes an API key for the edge (src/edge/access.ts).
 * Prints the key (shown once: give it to the client) and the entry to add to the API_KEYS secret,
 * which holds only the key's SHA-256.
 *
 *   npm run keys -- new team-a --models ppocr-cls,silero-vad
 *   npx wrangler secret put API_KEYS     # paste the JSON array of entries
 */
import { randomBytes } from "node:crypto";
import { apiKeySchema, keyHash } from "../edge/access";
import { cliProgram, InvalidArgumentError } from "./command";

const program = cliProgram("keys", "API keys for the edge: the key to hand out, and its hashed entry for the API_KEYS secret.");
program
  .command("new")
  .description("make a key; prints it once, and its API_KEYS entry")
  .argument("<name>", "who the key is for (letters, digits, '.', '_', '-'); names its rate limit and log lines")
  .option("--models <list>", "comma-separated models it may use, or *", "*")
  .action(async (name: string, options: { models: string }) => {
    const key = `eik_${randomBytes(24).toString("base64url")}`;
    const entry = apiKeySchema.safeParse({ name, sha256: await keyHash(key), models: options.models.split(",").map((m) => m.trim()).filter(Boolean) });
    if (!entry.success) program.error(`error: ${new InvalidArgumentError(entry.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")).message}`, { exitCode: 2 });
    console.log(`key (give it to the client; it is not stored anywhere): ${key}`);
    console.log(`API_KEYS entry: ${JSON.stringify(entry.data)}`);
  });
void program.parseAsync(process.argv);
