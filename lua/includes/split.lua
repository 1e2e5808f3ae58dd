-- Split sourcing for kit lines and capped splits (hold_reserve.lua, ARGV[14] and lines' "g").
-- Reached only when a hold may split (allow_split), no single location serves it, and it has
-- kit lines (a group: every line of a group at ONE location) or a cap on locations
-- (max_locations): a plain hold never runs this.
--
-- The rule (docs/architecture.md, "Sourcing rule"):
--   no cap: each group goes whole to the first candidate that serves it, then each other line
--           is split over the candidates in order (as without groups);
--   cap N:  up to N locations are chosen one at a time, each the candidate that serves the
--           most of what is left (groups only whole), candidate order breaking ties; what is
--           still left after N locations makes the hold short (all or nothing).
-- `free(si, loc)` and `take(si, loc, q)` are hold_reserve.lua's; `lines` its unpinned lines.
-- Returns the short lines ({} when everything was taken).

-- Does this split need the rule below: a cap, or a kit line among `lines`?
local function split_needed(lines, cap)
  if cap > 0 then return true end
  for i = 1, #lines do
    if lines[i].g then return true end
  end
  return false
end

local function split_source(lines, candidates, free, take, cap, skus)
  -- Helpers live inside: a plain hold, which never calls this, pays for no closure.
  local function split_group_fits(group, loc, free)
    local need = {}
    for i = 1, #group do
      local line = group[i]
      need[line.s] = (need[line.s] or 0) + line.q
      if free(line.s, loc) < need[line.s] then return false end
    end
    return true
  end

  local function split_group_units(group)
    local n = 0
    for i = 1, #group do n = n + group[i].q end
    return n
  end

  local groups, loose = {}, {}
  local by_id = {}
  for i = 1, #lines do
    local line = lines[i]
    if line.g then
      local g = by_id[line.g]
      if not g then
        g = {}
        by_id[line.g] = g
        groups[#groups + 1] = g
      end
      g[#g + 1] = line
    else
      loose[#loose + 1] = {s = line.s, q = line.q, left = line.q}
    end
  end
  local placed = {}
  local function place(gi, loc)
    for _, line in ipairs(groups[gi]) do take(line.s, loc, line.q) end
    placed[gi] = true
  end
  local function draw(item, loc)
    local n = math.min(item.left, math.max(free(item.s, loc), 0))
    if n > 0 then
      take(item.s, loc, n)
      item.left = item.left - n
    end
  end

  if cap <= 0 then
    for gi = 1, #groups do
      for c = 1, #candidates do
        if split_group_fits(groups[gi], candidates[c], free) then place(gi, candidates[c]) break end
      end
    end
    for _, item in ipairs(loose) do
      for c = 1, #candidates do
        if item.left == 0 then break end
        draw(item, candidates[c])
      end
    end
  else
    local used = {}
    for _ = 1, cap do
      local best, best_score = nil, 0
      for c = 1, #candidates do
        local loc = candidates[c]
        if not used[loc] then
          local score = 0
          for gi = 1, #groups do
            if not placed[gi] and split_group_fits(groups[gi], loc, free) then
              score = score + split_group_units(groups[gi])
            end
          end
          for _, item in ipairs(loose) do
            score = score + math.min(item.left, math.max(free(item.s, loc), 0))
          end
          if score > best_score then best, best_score = loc, score end
        end
      end
      if not best then break end
      used[best] = true
      for gi = 1, #groups do
        if not placed[gi] and split_group_fits(groups[gi], best, free) then place(gi, best) end
      end
      for _, item in ipairs(loose) do draw(item, best) end
    end
  end

  local short = {}
  for gi = 1, #groups do
    if not placed[gi] then
      for _, line in ipairs(groups[gi]) do
        short[#short + 1] = {sku = skus[line.s], requested = line.q, available = 0}
      end
    end
  end
  for _, item in ipairs(loose) do
    if item.left > 0 then
      short[#short + 1] = {sku = skus[item.s], requested = item.q, available = item.q - item.left}
    end
  end
  return short
end
