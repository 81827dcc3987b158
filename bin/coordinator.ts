#!/usr/bin/env bun
import { main } from "../src/coordinator/main.ts";

main();
