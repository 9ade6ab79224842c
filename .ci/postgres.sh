#!/usr/bin/env bash
# Sourced by .ci/run. (placeholder until filled in)
