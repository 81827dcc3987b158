#!/usr/bin/env bun
import { main } from "../src/top/main.ts";

await main();
