-- Claims every access token of a grant (token family) carries: the authorization-request
-- parameters the code's dialect carries (a JSON object of strings), for refreshed tokens too.
ALTER TABLE grants ADD COLUMN claims TEXT;
