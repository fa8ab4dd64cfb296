-- The share of a destination's configured rate in force at `now`: `factor` until `until_ms`,
-- then back to 1 linearly over `ramp` ms. No shape (nils) means the full rate.
local function effective_factor(factor, until_ms, ramp, now)
  if not factor or not until_ms then return 1 end
  if now < until_ms then return factor end
  if not ramp or ramp <= 0 or now >= until_ms + ramp then return 1 end
  return factor + (1 - factor) * (now - until_ms) / ramp
end
