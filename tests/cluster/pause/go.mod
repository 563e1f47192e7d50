module safeagent.local/build/pause

go 1.22
