#!/usr/bin/env bun
import { main } from "../src/client/main.ts";

await main();
