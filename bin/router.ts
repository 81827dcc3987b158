#!/usr/bin/env bun
import { main } from "../src/router/main.ts";

main();
